"""Admin pages of the registry, scoped like every other door."""

from django import forms
from django.contrib import admin

from accounts.admin_base import ReadOnlyScopedAdmin, ScopedModelAdmin

from .models import (
    Channel,
    CommSettings,
    CommStatus,
    Customer,
    DataConcentrator,
    GridNode,
    Meter,
    MeterModel,
)


class SecretInput(forms.PasswordInput):
    """Never renders the stored value; an empty submission keeps it."""

    def __init__(self):
        super().__init__(render_value=False, attrs={"autocomplete": "new-password"})


class CommSettingsForm(forms.ModelForm):
    """Secrets: blank keeps the stored value; the page only says whether one is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in CommSettings.SECRET_FIELDS:
            field = self.fields.get(name)
            if field is None:
                continue
            field.widget = SecretInput()
            field.required = False
            is_set = bool(self.instance.pk and getattr(self.instance, name))
            field.help_text = "stored (leave blank to keep)" if is_set else "not set"

    def clean(self):
        cleaned = super().clean()
        for name in CommSettings.SECRET_FIELDS:
            if name in cleaned and not cleaned[name] and self.instance.pk:
                cleaned[name] = getattr(type(self.instance).objects.get(pk=self.instance.pk), name)
                setattr(self.instance, name, cleaned[name])
        return cleaned


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
class DataConcentratorAdmin(ScopedModelAdmin):
    form = CommSettingsForm
    list_display = ("serial", "name", "organisation", "protocol", "host", "port")
    search_fields = ("serial", "name")


@admin.register(Meter)
class MeterAdmin(ScopedModelAdmin):
    form = CommSettingsForm
    list_display = ("serial", "meter_model", "status", "organisation", "service_point", "protocol")
    list_filter = ("status", "protocol", "meter_model")
    search_fields = ("serial", "service_point__code")
    raw_id_fields = ("service_point", "concentrator")


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


from .alarms import admin as alarm_admin  # noqa: E402, F401  (alarm pages register themselves)
