"""Admin pages of the registry, scoped like every other door."""

from django import forms
from django.contrib import admin

from accounts import audit
from accounts.admin_base import ReadOnlyScopedAdmin, ScopedModelAdmin
from accounts.secret_forms import SecretFieldsForm

from .models import (
    Channel,
    CommLine,
    CommStatus,
    ConcentratorEndpoint,
    Customer,
    DataConcentrator,
    GridNode,
    Meter,
    MeterEndpoint,
    MeterModel,
)


class EndpointForm(SecretFieldsForm):
    """Secrets: blank keeps the stored value; the page only says whether one is set."""


class EndpointInline(admin.StackedInline):
    """The row's endpoint (one): line, security, timing and the protocol's options."""

    form = EndpointForm
    extra = 0
    min_num = 1
    max_num = 1
    can_delete = False


class MeterEndpointInline(EndpointInline):
    model = MeterEndpoint


class ConcentratorEndpointInline(EndpointInline):
    model = ConcentratorEndpoint


class EndpointOwnerForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.endpoint_edited_apart = True  # the inline's form checks it


class EndpointOwnerAdmin(ScopedModelAdmin):
    """The endpoint inline is saved after the row: its changes get an audit row of their own."""

    form = EndpointOwnerForm

    def save_related(self, request, form, formsets, change):
        obj = form.instance
        before = self._endpoint_snapshot(obj) if change else None
        super().save_related(request, form, formsets, change)
        changes = audit.diff(before, self._endpoint_snapshot(obj)) if change else {}
        if changes:
            audit.record("update", user=request.user, obj=obj, changes=changes)

    def save_formset(self, request, form, formset, change):
        # Saving the row gave it its endpoint already: the inline's form updates that one.
        if formset.model is type(form.instance).endpoint_model():
            stored = form.instance.stored_endpoint()
            for inline_form in formset.forms:
                if inline_form.instance.pk is None and stored is not None and stored.pk:
                    inline_form.instance.pk = stored.pk
                    inline_form.instance._state.adding = False
        super().save_formset(request, form, formset, change)

    @staticmethod
    def _endpoint_snapshot(obj) -> dict:
        return type(obj).objects.select_related("endpoint").get(pk=obj.pk).audit_fields()


@admin.register(GridNode)
class GridNodeAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "kind", "organisation", "parent")
    list_filter = ("kind",)
    search_fields = ("code", "name", "address")
    raw_id_fields = ("parent",)


class ChannelInline(admin.TabularInline):
    model = Channel
    extra = 0


@admin.register(MeterModel)
class MeterModelAdmin(ScopedModelAdmin):
    list_display = ("manufacturer", "name", "protocol", "get_with_list", "organisation")
    search_fields = ("manufacturer", "name")
    inlines = [ChannelInline]


@admin.register(Channel)
class ChannelAdmin(ScopedModelAdmin):
    list_display = ("meter_model", "obis", "name", "unit", "scaler", "kind", "accumulation")
    list_filter = ("kind", "accumulation")
    search_fields = ("obis", "name")


@admin.register(DataConcentrator)
class DataConcentratorAdmin(EndpointOwnerAdmin):
    inlines = [ConcentratorEndpointInline]
    list_display = ("serial", "name", "organisation", "read_mode", "protocol", "host", "port")
    list_select_related = ("endpoint", "organisation")
    search_fields = ("serial", "name")


@admin.register(Meter)
class MeterAdmin(EndpointOwnerAdmin):
    inlines = [MeterEndpointInline]
    list_display = ("serial", "meter_model", "status", "organisation", "service_point", "protocol")
    list_select_related = ("endpoint", "meter_model", "organisation", "service_point")
    list_filter = ("status", "endpoint__protocol", "meter_model")
    search_fields = ("serial", "service_point__code")
    raw_id_fields = ("service_point", "concentrator", "check_node")


@admin.register(Customer)
class CustomerAdmin(ScopedModelAdmin):
    list_display = ("account_number", "name", "service_point", "organisation", "tariff_code")
    search_fields = ("account_number", "name", "email", "phone")
    raw_id_fields = ("service_point", "portal_user")
    exclude = ("organisation",)


@admin.register(CommStatus)
class CommStatusAdmin(ReadOnlyScopedAdmin):
    """Written by collection after every read; only looked at here."""

    list_display = ("meter", "last_success", "consecutive_failures", "unreachable", "clock_drift_s")
    list_filter = ("unreachable",)
    search_fields = ("meter__serial",)


@admin.register(CommLine)
class CommLineAdmin(ScopedModelAdmin):
    """Shared lines: made and kept up to date by the reads; the session limit is the
    operator's to set."""

    list_display = ("key", "kind", "state", "meters", "max_sessions", "last_contact")
    list_filter = ("kind", "down")
    search_fields = ("key", "label")
    fields = ("key", "kind", "label", "organisation", "concentrator", "max_sessions")
    readonly_fields = ("key", "kind", "label", "organisation", "concentrator")

    def has_add_permission(self, request):
        return False


from .alarms import admin as alarm_admin  # noqa: E402, F401  (alarm pages register themselves)
