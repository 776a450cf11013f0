"""The data query form: which meters, which channels, when, at which resolution."""

from __future__ import annotations

from django import forms

from meters.choices import MeterStatus, NodeKind
from meters.models import GridNode, Meter, MeterModel
from meters.store import query
from meters.store.days import day_bounds, day_out_of_range

MAX_DAYS = 3660
RESOLUTION_CHOICES = [
    (query.AUTO, "Automatic"),
    (query.RAW, "Raw intervals"),
    (query.HOUR, "Hourly"),
    (query.DAY, "Daily"),
    (query.MONTH, "Monthly"),
]


class DataQueryForm(forms.Form):
    """Every choice offered is already within the user's scope; the meters are restricted too."""

    q = forms.CharField(label="Search", required=False, help_text="serial, address, customer")
    status = forms.ChoiceField(choices=[("", "any status"), *MeterStatus.choices], required=False)
    meter_model = forms.ModelChoiceField(
        MeterModel.objects.none(), required=False, empty_label="any model"
    )
    node = forms.ModelChoiceField(
        GridNode.objects.none(), required=False, label="Grid node", empty_label="whole grid"
    )
    channels = forms.MultipleChoiceField(
        choices=[], widget=forms.CheckboxSelectMultiple, label="Quantities"
    )
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="inclusive")
    resolution = forms.ChoiceField(choices=RESOLUTION_CHOICES, initial=query.AUTO, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        models = MeterModel.objects.restrict(user, "view")
        self.fields["meter_model"].queryset = models
        self.fields["node"].queryset = (
            GridNode.objects.restrict(user, "view")
            .exclude(kind=NodeKind.SERVICE_POINT)
            .order_by("path")
        )
        seen = {}
        for channel in query.queryable_channels(models.values_list("pk", flat=True)):
            seen.setdefault(channel.obis, f"{channel.name} ({channel.obis})")
        self.fields["channels"].choices = list(seen.items())

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        for name, day in (("start", start), ("end", end)):
            if day and day_out_of_range(day):
                self.add_error(name, day_out_of_range(day))
                start = end = None
        if start and end:
            if end < start:
                self.add_error("end", "The end is before the start.")
            elif (end - start).days > MAX_DAYS:
                self.add_error("end", f"At most {MAX_DAYS} days at once.")
        return data

    def meters(self):
        data = self.cleaned_data
        return query.select_meters(
            Meter.objects.restrict(self.user, "view"),
            q=data.get("q", ""),
            status=data.get("status", ""),
            meter_model=data["meter_model"].pk if data.get("meter_model") else None,
            node=data.get("node"),
        )

    def build(self) -> query.DataQuery:
        data = self.cleaned_data
        start = day_bounds(data["start"])[0]
        end = day_bounds(data["end"])[1]
        return query.DataQuery(
            self.meters(), list(data["channels"]), start, end, data.get("resolution") or "auto"
        )
