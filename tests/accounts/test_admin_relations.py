"""Every relation field of every admin form offers and accepts only objects in scope.

Generated over the admin registry: for each scoped admin a region administrator may
change, each foreign-key and many-to-many field of its change form (inline forms
included) must not list the other region's objects, and posting one of them changes
nothing.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.test import RequestFactory

from accounts.admin_base import ScopedModelAdmin
from tests.accounts.test_admin_scoping import OBJECTS, _admin_models
from tests.accounts.test_filter_scoping import _populate
from tests.admin_forms import change_url, page_data, staff_client

pytestmark = pytest.mark.django_db


def _editable_models():
    out = []
    for model, objects in _admin_models():
        model_admin = admin.site._registry[model]
        if type(model_admin).has_change_permission is not ScopedModelAdmin.has_change_permission:
            if not model_admin.has_change_permission.__qualname__.startswith("ScopedModelAdmin"):
                continue  # read-only admins have no form to post
        out.append((model, objects))
    return out


def _relation_fields(response):
    """(form, field name) of every relation field on the page, inline forms included."""
    forms = [response.context["adminform"].form]
    for inline in response.context.get("inline_admin_formsets", []):
        forms.extend(inline.formset.forms[:1])
    for form in forms:
        for name, field in form.fields.items():
            if name == form._meta.model._meta.pk.name:
                continue  # an inline row's own hidden id, matched against its parent's rows
            if isinstance(field, ModelChoiceField) and not field.disabled:
                yield form, name, field


def _value(instance, name):
    field = instance._meta.get_field(name)
    if field.many_to_many:
        return sorted(getattr(instance, name).values_list("pk", flat=True))
    return getattr(instance, field.attname)


@pytest.mark.parametrize(
    "model,objects", _editable_models(), ids=lambda v: getattr(v, "__name__", "")
)
def test_admin_relation_fields_refuse_foreign_objects(world, model, objects):
    obj_a, _obj_b = (OBJECTS.get(model) or objects)(world)
    _populate(world)
    user = world.admin_a
    request = RequestFactory().get("/")
    request.user = user
    if not admin.site._registry[model].has_change_permission(request, obj_a):
        pytest.skip(f"{model.__name__} is read-only in the admin")
    client = staff_client(user)
    page = client.get(change_url(obj_a))
    assert page.status_code == 200
    tried = 0
    for form, name, field in list(_relation_fields(page)):
        related = field.queryset.model
        everything = related._default_manager.all()
        if not hasattr(everything, "restrict"):
            continue  # roles and permissions: the same for everybody
        scoped = everything.restrict(user, "view")
        foreign = everything.exclude(pk__in=scoped.values("pk")).first()
        assert foreign is not None, f"{model.__name__}.{name}: no foreign {related.__name__}"
        assert not field.queryset.filter(pk=foreign.pk).exists(), (
            f"{model.__name__}.{name} lists {foreign}"
        )
        instance = form.instance
        before = _value(instance, name) if instance.pk else None
        data = page_data(page)
        key = form[name].html_name
        data[key] = (
            [str(foreign.pk)] if isinstance(field, ModelMultipleChoiceField) else str(foreign.pk)
        )
        response = client.post(change_url(obj_a), data)
        assert response.status_code != 302, f"{model.__name__}.{name} took {foreign}"
        if instance.pk:
            instance.refresh_from_db()
            assert _value(instance, name) == before, f"{model.__name__}.{name} changed"
        tried += 1


def test_save_recheck_refuses_a_foreign_relation_a_form_let_through(world):
    """The backstop after save: a form that forgot to scope its choices still cannot save."""
    from accounts.actions import OutOfScope, ensure_relations_in_scope
    from collection.models import ReadJob

    job = ReadJob.objects.create(name="north job", organisation=world.org_a)
    job.meters.add(world.grid_b.meters[0])
    with pytest.raises(OutOfScope):
        ensure_relations_in_scope(job, world.admin_a, ["meters"])
    job.meters.set([world.grid_a.meters[0]])
    ensure_relations_in_scope(job, world.admin_a, ["meters", "organisation", "name"])
