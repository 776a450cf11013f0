"""The admin base class: the same scoping, re-check and audit as every other door."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction

from . import actions, audit
from .scoping import ScopedQuerySet


class ScopedModelAdmin(admin.ModelAdmin):
    """Lists, forms and foreign-key choices restricted to the user's scope; writes audited."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        self._scope_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        self._scope_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @staticmethod
    def _scope_choices(db_field, request, kwargs):
        """Every picker (select, filter_horizontal, raw id) accepts only objects in scope."""
        related = db_field.remote_field.model
        base = kwargs.get("queryset")
        if base is None:
            base = related._default_manager.all()
        if isinstance(base, ScopedQuerySet):
            kwargs["queryset"] = base.restrict(request.user, "view")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._in_scope(
            request, obj, "change"
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._in_scope(
            request, obj, "delete"
        )

    def _in_scope(self, request, obj, action):
        if obj is None:
            return True
        return type(obj).objects.restrict(request.user, action).filter(pk=obj.pk).exists()

    def save_model(self, request, obj, form, change):
        before = None
        if change and obj.pk:
            before = audit.snapshot(type(obj).objects.get(pk=obj.pk))
        try:
            with transaction.atomic():
                actions.save_object(obj, acting_user=request.user, before=before)
        except actions.OutOfScope as exc:
            # Roll back and say why; the admin then shows the changelist unchanged.
            messages.error(request, str(exc))
            raise

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Many-to-many fields (a job's meters, a user's roles) are saved after the object:
        # re-check the whole result inside the admin's transaction, which a refusal undoes.
        actions.ensure_in_scope(form.instance, request.user, "change" if change else "add")
        actions.access_may_have_changed(form.instance)  # roles are saved only now
        for bound in [form, *(f for formset in formsets for f in formset.forms)]:
            actions.ensure_relations_in_scope(bound.instance, request.user, bound.changed_data)

    def delete_model(self, request, obj):
        actions.delete_object(obj, acting_user=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset.restrict(request.user, "delete"):
                actions.delete_object(obj, acting_user=request.user)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Out of scope looks exactly like absent, and absent is 404 here as everywhere.
        from django.http import Http404

        raise Http404(f"No {opts.verbose_name} with this id.")

    # Django's own LogEntry rows are replaced by the activity log written above.
    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletion(self, request, obj, object_repr):
        return None

    def log_deletions(self, request, queryset):
        return None


class ReadOnlyScopedAdmin(ScopedModelAdmin):
    """Records that change only through their app's actions: shown in scope, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
