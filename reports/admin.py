"""The report engine's rows in the staff admin, scoped like every other door.

* Definitions and schedules may be changed here, through the same operations as the pages
  and the API: a definition's save is a new version (`actions.save_definition`), checked
  against its report (`engine.problems`); a schedule's save keeps its beat entry
  (`actions.save_schedule`) and mails only active staff of the definition's organisation;
  deleting either removes its beat entries. Every write is audited.
* Versions, runs, deliveries and data-query exports are history: shown, never edited or
  deleted here (a run records the version it used, a delivery what became of a mail).
* Every picker (the grid node, meter model, definition and recipient autocompletes) offers
  only objects in the user's scope: the target's admin is scoped, and so is the form field.
* File exchange targets are edited here (`actions.save_target`: its folders and its daily
  beat entry); their log is history, shown only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from accounts import actions as account_actions
from accounts import audit
from accounts.admin_base import ReadOnlyScopedAdmin, ScopedModelAdmin
from accounts.secret_forms import SecretFieldsForm

from . import actions, engine
from .forms import DEFINITION_FIELDS, add_problems, recipients_for
from .models import (
    ExchangeLog,
    ExchangeTarget,
    ExportJob,
    ReportDefinition,
    ReportDelivery,
    ReportRun,
    ReportSchedule,
    ReportVersion,
)


class DefinitionAdminForm(forms.ModelForm):
    """The definition's fields, checked as the page and the API check them."""

    user = None  # the admin's request user (set by `get_form`)

    class Meta:
        model = ReportDefinition
        fields = DEFINITION_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"] = forms.ChoiceField(
            choices=engine.source_choices(self.user), label="Report"
        )

    def clean(self):
        cleaned = super().clean()
        add_problems(self, cleaned)  # the node's organisation: the model's clean
        return cleaned


def _bound(form_class, request):
    return type(form_class.__name__, (form_class,), {"user": request.user})


def _save_audited(request, obj, change, save):
    """`save()` the object through its operation, re-check its scope and audit it, in one
    transaction (an object out of scope rolls back with the admin's message)."""
    before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
    try:
        with transaction.atomic():
            save()
            account_actions.record_saved(obj, acting_user=request.user, before=before)
    except account_actions.OutOfScope as exc:
        messages.error(request, str(exc))
        raise


class _DeletedThrough(ScopedModelAdmin):
    """Deletes go through the app's operation (`delete`), audited, one object at a time."""

    delete_operation = None

    def delete_model(self, request, obj):
        with transaction.atomic():
            account_actions.ensure_in_scope(obj, request.user, "delete")
            audit.record("delete", user=request.user, obj=obj, detail=str(obj)[:200])
            type(self).delete_operation(obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset.restrict(request.user, "delete"):
                self.delete_model(request, obj)


@admin.register(ReportDefinition)
class ReportDefinitionAdmin(_DeletedThrough):
    form = DefinitionAdminForm
    delete_operation = staticmethod(actions.delete_definition)
    list_display = ("name", "organisation", "source", "grouping", "period", "version",
                    "builtin", "updated_at")  # fmt: skip
    list_filter = ("source", "period")
    search_fields = ("name", "description")
    autocomplete_fields = ("node", "meter_model")
    readonly_fields = ("version", "builtin", "created_by", "created_at", "updated_at")
    list_select_related = ("organisation",)

    def get_form(self, request, obj=None, **kwargs):
        return _bound(super().get_form(request, obj, **kwargs), request)

    def save_model(self, request, obj, form, change):
        _save_audited(request, obj, change, lambda: actions.save_definition(obj, request.user))

    def get_deleted_objects(self, objs, request):
        """A definition's versions, runs and deliveries go with it (as on its page), though
        nobody may delete them on their own: only its schedules need the user's permission."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        history = {m._meta.verbose_name for m in (ReportVersion, ReportRun, ReportDelivery)}
        return deleted, counts, perms_needed - history, protected


class ScheduleAdminForm(forms.ModelForm):
    """When a definition runs and who gets it: active staff of its organisation only."""

    user = None

    class Meta:
        model = ReportSchedule
        fields = ["definition", "frequency", "at", "weekday", "day_of_month", "fmt",
                  "recipients", "enabled"]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        definition, recipients = cleaned.get("definition"), cleaned.get("recipients")
        if definition is not None and recipients is not None:
            allowed = set(recipients_for(self.user, definition).values_list("pk", flat=True))
            if strangers := [str(u) for u in recipients if u.pk not in allowed]:
                self.add_error(
                    "recipients",
                    f"Not active staff of {definition.organisation} with an e-mail address: "
                    f"{', '.join(strangers)}.",
                )
        return cleaned


@admin.register(ReportSchedule)
class ReportScheduleAdmin(_DeletedThrough):
    form = ScheduleAdminForm
    delete_operation = staticmethod(actions.delete_schedule)
    list_display = ("definition", "organisation", "frequency", "at", "fmt", "enabled",
                    "created_by")  # fmt: skip
    list_filter = ("frequency", "fmt", "enabled")
    search_fields = ("definition__name",)
    autocomplete_fields = ("definition", "recipients")
    readonly_fields = ("organisation", "periodic_task", "created_by", "created_at")
    list_select_related = ("definition", "organisation")

    def get_form(self, request, obj=None, **kwargs):
        return _bound(super().get_form(request, obj, **kwargs), request)

    def save_model(self, request, obj, form, change):
        _save_audited(request, obj, change, lambda: actions.save_schedule(obj, request.user))


@admin.register(ReportVersion)
class ReportVersionAdmin(ReadOnlyScopedAdmin):
    list_display = ("definition", "number", "saved_by", "saved_at")
    search_fields = ("definition__name",)
    list_select_related = ("definition", "saved_by")


@admin.register(ReportRun)
class ReportRunAdmin(ReadOnlyScopedAdmin):
    list_display = ("pk", "definition", "version", "fmt", "status", "first_day", "last_day",
                    "rows_done", "size", "schedule", "requested_by", "created_at")  # fmt: skip
    list_filter = ("status", "fmt")
    search_fields = ("definition__name",)
    date_hierarchy = "created_at"
    list_select_related = ("definition", "version", "schedule", "requested_by")


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(ReadOnlyScopedAdmin):
    list_display = ("run", "email", "status", "attached", "attempts", "error", "created_at",
                    "sent_at")  # fmt: skip
    list_filter = ("status", "attached")
    search_fields = ("email", "run__definition__name")
    date_hierarchy = "created_at"
    list_select_related = ("run__definition", "run__version")


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyScopedAdmin):
    list_display = ("pk", "fmt", "status", "rows_done", "rows_estimated", "requested_by",
                    "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "fmt")
    date_hierarchy = "created_at"
    list_select_related = ("requested_by",)


IMPORT_PERMS = ("meters.add_meter", "meters.change_meter")


SFTP_FIELDS = ["sftp_host", "sftp_port", "sftp_user", "sftp_password", "sftp_private_key",
               "sftp_host_key", "sftp_directory"]  # fmt: skip


class ExchangeTargetForm(SecretFieldsForm):
    """Imports write meters as `run_as`: only someone who may add and change meters
    themselves can turn them on (an analyst cannot borrow an engineer's rights). The SFTP
    password and key are never shown again once stored (blank keeps them)."""

    user = None
    MULTILINE_SECRETS = ("sftp_private_key",)

    class Meta:
        model = ExchangeTarget
        fields = ["organisation", "name", "kind", "folder", "run_as", "export_readings",
                  "export_events", "export_config", "imports", "at", "enabled",
                  "retention_days", *SFTP_FIELDS]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("imports") and self.user is not None:
            if not self.user.has_perms(IMPORT_PERMS):
                self.add_error(
                    "imports", "Only users who may add and change meters can set up imports."
                )
        return cleaned


@admin.register(ExchangeTarget)
class ExchangeTargetAdmin(_DeletedThrough):
    form = ExchangeTargetForm
    delete_operation = staticmethod(actions.delete_target)
    list_display = ("name", "organisation", "kind", "folder", "run_as", "at", "imports",
                    "enabled")  # fmt: skip
    list_filter = ("kind", "enabled", "imports")
    search_fields = ("name", "folder", "sftp_host")
    list_select_related = ("organisation", "run_as")
    fieldsets = [
        (None, {"fields": ["organisation", "name", "kind", "folder", "run_as", "at", "enabled"]}),
        ("Files", {"fields": ["export_readings", "export_events", "export_config", "imports",
                              "retention_days"]}),
        ("SFTP server (kind SFTP: the folder keeps a local copy of every file)",
         {"fields": SFTP_FIELDS}),
    ]  # fmt: skip

    def get_form(self, request, obj=None, **kwargs):
        return _bound(super().get_form(request, obj, **kwargs), request)

    def save_model(self, request, obj, form, change):
        _save_audited(request, obj, change, lambda: actions.save_target(obj))


@admin.register(ExchangeLog)
class ExchangeLogAdmin(ReadOnlyScopedAdmin):
    list_display = ("filename", "target", "direction", "state", "rows", "attempts", "created_at")
    list_filter = ("direction", "state", "document")
    search_fields = ("filename", "summary")
    date_hierarchy = "created_at"
    list_select_related = ("target",)
