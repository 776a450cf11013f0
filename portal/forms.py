"""Forms of the portal's account pages (activation, login details, e-mail, reset)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation


class ActivateForm(forms.Form):
    """Who the customer is: account number + bill code, or meter serial + last payment."""

    account_number = forms.CharField(max_length=32, required=False, label="Account number")
    bill_code = forms.CharField(
        max_length=20, required=False, label="Activation code from your bill"
    )
    meter_serial = forms.CharField(
        max_length=32, required=False, label="Meter serial or prepaid meter number"
    )
    last_payment = forms.CharField(
        max_length=16, required=False, label="Amount of your last purchase"
    )

    def clean(self):
        data = super().clean()
        bill = data.get("account_number") and data.get("bill_code")
        payment = data.get("meter_serial") and data.get("last_payment")
        if not bill and not payment:
            raise forms.ValidationError(
                "Enter your account number and the code from your bill, "
                "or your meter's serial and the amount of your last purchase."
            )
        return data

    @property
    def key(self) -> str:
        """What the tries are counted by: the account number, else the meter serial."""
        data = getattr(self, "cleaned_data", None) or self.data
        return str(data.get("account_number") or data.get("meter_serial") or "")


class SetPasswordMixin(forms.Form):
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def password_user(self):
        return None

    def clean(self):
        data = super().clean()
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            try:
                password_validation.validate_password(first, self.password_user())
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class LoginDetailsForm(SetPasswordMixin):
    """The new login: a user name, the e-mail address to confirm, a password."""

    username = forms.RegexField(
        regex=r"^[\w.@+-]{3,150}$",
        max_length=150,
        label="User name",
        error_messages={"invalid": "3 to 150 letters, digits and . @ + - _ only."},
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    email = forms.EmailField(
        label="E-mail address", widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    field_order = ["username", "email", "password1", "password2"]


class ResetForm(SetPasswordMixin):
    """A new password from a reset link."""

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def password_user(self):
        return self.user


class EmailForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address", widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
