"""Post admin forms as a browser would: the form's own current values, plus what a test changes."""

from __future__ import annotations

from django.forms import CheckboxInput, MultiWidget
from django.test import Client
from django.urls import reverse


def staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def change_url(obj) -> str:
    return admin_url(type(obj), "change", obj.pk)


def form_data(form) -> dict:
    """The POST body that submits `form` unchanged (management forms of inlines excluded)."""
    data: dict = {}
    for bound in form:
        if bound.field.disabled:
            continue
        widget, value = bound.field.widget, bound.value()
        if isinstance(widget, MultiWidget):
            parts = value if isinstance(value, list | tuple) else widget.decompress(value)
            for suffix, part in zip(widget.widgets_names, parts, strict=False):
                data[bound.html_name + suffix] = "" if part is None else str(part)
        elif isinstance(widget, CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(getattr(v, "pk", v)) for v in value]
        else:
            data[bound.html_name] = "" if value is None else str(getattr(value, "pk", value))
    return data


def page_data(response) -> dict:
    """The POST body that saves an admin add/change page as shown, inlines included."""
    data = form_data(response.context["adminform"].form)
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        data.update(form_data(formset.management_form))
        for form in formset.forms:
            data.update(form_data(form))
    return data
