"""The customer's outages page: now, planned, and how to be told (see `portal.outages`)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from . import outages
from .models import OutagePreference
from .views import customer_view


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = OutagePreference
        fields = ["by_sms", "by_email", "planned", "quiet_start", "quiet_end"]
        labels = {"quiet_start": "Quiet from", "quiet_end": "Quiet until"}
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self):
        data = super().clean()
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            raise forms.ValidationError("Give both ends of the quiet hours, or neither.")
        return data


@customer_view
def outages_page(request, customer):
    form = PreferenceForm(request.POST or None, instance=outages.preference_of(customer))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved: we tell you of outages as you chose.")
        return redirect("portal:outages")
    return render(
        request,
        "portal/outages.html",
        {
            "customer": customer,
            "now": outages.now_at(customer),
            "planned": list(outages.planned(customer)),
            "form": form,
        },
        status=400 if form.errors else 200,
    )
