"""Forms of the vending pages."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from .choices import MANAGEMENT_PURPOSES, BaseDate


class OpenShiftForm(forms.Form):
    station = forms.ModelChoiceField(queryset=None)
    opening_float = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0, initial=0)

    def __init__(self, *args, stations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = stations


class CloseShiftForm(forms.Form):
    cash_counted = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SellForm(forms.Form):
    meter_number = forms.CharField(
        max_length=18,
        help_text="meter number, MeterPAN or customer account number",
        widget=forms.TextInput(attrs={"list": "prepaid-accounts", "autocomplete": "off"}),
    )
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))


class ReverseForm(forms.Form):
    """A reversal: why, whether the token was entered, and where the refund is paid."""

    reason = forms.CharField(max_length=300)
    token_entered = forms.TypedChoiceField(
        label="Was the token entered in the meter?",
        choices=[("", "-- ask the customer or read the meter --"), ("no", "No"), ("yes", "Yes")],
        coerce=lambda value: value == "yes", empty_value=None,
    )  # fmt: skip
    evidence = forms.CharField(
        max_length=200, required=False, help_text="how you know (meter read, customer's word)"
    )
    refund_shift = forms.ModelChoiceField(
        queryset=None, required=False, help_text="the open shift whose drawer pays the refund"
    )
    refund_reference = forms.CharField(
        max_length=100, required=False, help_text="or: the reference of a refund paid elsewhere"
    )

    def __init__(self, *args, shifts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["refund_shift"].queryset = shifts


class ManagementTokenForm(forms.Form):
    purpose = forms.ChoiceField(choices=[(p.value, p.label) for p in MANAGEMENT_PURPOSES])
    watts = forms.IntegerField(required=False, min_value=0, help_text="power limit")
    register = forms.IntegerField(required=False, min_value=0, max_value=0xFFFF)
    new_sgc = forms.IntegerField(required=False, min_value=0, max_value=999_999)
    new_krn = forms.IntegerField(required=False, min_value=1, max_value=9)
    new_ti = forms.IntegerField(required=False, min_value=0, max_value=99)
    new_base_date = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None,
        choices=[("", "same")] + list(BaseDate.choices),
    )  # fmt: skip
    reason = forms.CharField(max_length=300)
