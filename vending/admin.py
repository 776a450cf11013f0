"""Admin pages of vending, scoped like every other door; money rows are read-only here.

Sales, tokens, reversals, shifts and management orders change only through
`vending.actions` (the counter pages and the API), so their admin pages only show them.
Vending keys are write-only: the form never renders a stored key.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from accounts.admin_base import ReadOnlyScopedAdmin, ScopedModelAdmin

from .models import (
    AccountMovement,
    ManagementOrder,
    PrepaidAccount,
    Sale,
    SaleReversal,
    Shift,
    Tariff,
    TariffBlock,
    Token,
    VendingKey,
    VendingStation,
)


class VendingKeyForm(forms.ModelForm):
    """The key field never shows the stored value; blank on change keeps it."""

    key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = VendingKey
        fields = ["organisation", "sgc", "krn", "label", "key"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("key", None)
        is_set = bool(self.instance.pk and self.instance.key)
        self.fields["key"].help_text = "stored (leave blank to keep)" if is_set else "hex"

    def clean_key(self):
        value = self.cleaned_data.get("key", "")
        if not value and self.instance.pk:
            return VendingKey.objects.get(pk=self.instance.pk).key
        if not value:
            raise forms.ValidationError("A new vending key needs its value.")
        return value


@admin.register(VendingKey)
class VendingKeyAdmin(ScopedModelAdmin):
    form = VendingKeyForm
    list_display = ("sgc", "krn", "label", "organisation", "created_at")
    search_fields = ("label",)


class TariffBlockInline(admin.TabularInline):
    model = TariffBlock
    extra = 0


@admin.register(Tariff)
class TariffAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "kind", "currency", "price_per_kwh", "organisation", "active")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")
    inlines = [TariffBlockInline]


@admin.register(TariffBlock)
class TariffBlockAdmin(ScopedModelAdmin):
    list_display = ("tariff", "up_to_kwh", "price_per_kwh")


@admin.register(PrepaidAccount)
class PrepaidAccountAdmin(ScopedModelAdmin):
    list_display = ("meter_number", "customer", "meter", "tariff", "sgc", "krn", "ti",
                    "debt_balance", "credit_balance", "active")  # fmt: skip
    search_fields = ("meter_number", "pan", "customer__account_number", "customer__name")
    raw_id_fields = ("customer", "meter")
    readonly_fields = ("pan", "last_tid", "debt_balance", "credit_balance",
                       "fixed_charge_billed_until", "organisation", "service_point")  # fmt: skip


@admin.register(VendingStation)
class VendingStationAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "kind", "organisation", "active")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")
    filter_horizontal = ("clerks",)


@admin.register(Shift)
class ShiftAdmin(ReadOnlyScopedAdmin):
    list_display = ("station", "clerk", "status", "opened_at", "closed_at", "expected_cash",
                    "cash_counted", "variance")  # fmt: skip
    list_filter = ("status",)


@admin.register(Sale)
class SaleAdmin(ReadOnlyScopedAdmin):
    list_display = ("reference", "account", "station", "sold_by", "channel", "status",
                    "amount_paid", "energy_kwh", "created_at")  # fmt: skip
    list_filter = ("status", "channel")
    search_fields = ("account__meter_number", "payment_reference")


@admin.register(Token)
class TokenAdmin(ReadOnlyScopedAdmin):
    list_display = ("account", "purpose", "kind", "sequence", "tid", "amount_kwh", "issued_at")
    list_filter = ("purpose",)


@admin.register(SaleReversal)
class SaleReversalAdmin(ReadOnlyScopedAdmin):
    list_display = ("sale", "reversed_by", "token_entered", "refund_amount", "refund_shift",
                    "compensating_debt", "created_at")  # fmt: skip


@admin.register(AccountMovement)
class AccountMovementAdmin(ReadOnlyScopedAdmin):
    list_display = ("account", "kind", "debt_change", "credit_change", "debt_after",
                    "credit_after", "created_at")  # fmt: skip
    list_filter = ("kind",)
    search_fields = ("account__meter_number",)


@admin.register(ManagementOrder)
class ManagementOrderAdmin(ReadOnlyScopedAdmin):
    list_display = ("account", "purpose", "issued_by", "created_at", "reason")
    list_filter = ("purpose",)
