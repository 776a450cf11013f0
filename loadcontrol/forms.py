"""The schedule form of the load-control pages: meters by grid node, customer group (tariff
code) or serials, local date, time, duration and recurrence (checked by
loadcontrol/recurrence.py on preview)."""

from __future__ import annotations

from django import forms

from .models import Recurrence

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=100)
    node = forms.IntegerField(
        required=False, min_value=1, label="Grid node id", help_text="its whole subtree"
    )
    tariff = forms.CharField(
        required=False,
        max_length=32,
        label="Customer group (tariff code)",
        help_text="or the meters of the customers on this tariff",
    )
    serials = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="or meter serials, separated by spaces, commas or lines",
    )
    starts_on = forms.DateField(label="First day", widget=forms.DateInput(attrs={"type": "date"}))
    at = forms.TimeField(label="Local start", widget=forms.TimeInput(attrs={"type": "time"}))
    duration_minutes = forms.IntegerField(min_value=1, max_value=7 * 24 * 60, label="Minutes")
    recurrence = forms.ChoiceField(choices=Recurrence.choices)
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    until = forms.DateField(
        required=False, label="Last day", widget=forms.DateInput(attrs={"type": "date"})
    )
    reason = forms.CharField(max_length=2000)

    def clean(self):
        data = super().clean()
        ways = [data.get("node"), (data.get("tariff") or "").strip(), (data.get("serials") or "")]
        if sum(1 for way in ways if str(way or "").strip()) != 1:
            raise forms.ValidationError(
                "Choose the meters one way: a grid node, a customer group or serials."
            )
        return data

    def serial_list(self) -> list[str]:
        text = self.cleaned_data.get("serials") or ""
        return sorted({s for s in text.replace(",", " ").split() if s})
