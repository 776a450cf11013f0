"""The data query form (which meters, which channels, when, at which resolution); the
report definition and schedule forms."""

from __future__ import annotations

from django import forms

from accounts.models import Organisation, User
from meters.choices import MeterStatus, NodeKind
from meters.coverage import NODE_OUTSIDE, node_outside
from meters.models import Customer, GridNode, Meter, MeterModel
from meters.store import query
from meters.store.days import day_bounds, day_out_of_range

from . import engine
from .models import ReportDefinition, ReportSchedule

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


# A definition's fields as analysts edit them (the page's form and the admin's).
DEFINITION_FIELDS = [
    "name", "organisation", "description", "source", "node", "meter_model", "customer_class",
    "grouping", "columns", "quantities", "period", "period_from", "period_to", "graph",
]  # fmt: skip


def add_problems(form, cleaned: dict) -> None:
    """`engine.problems` of the cleaned settings as the form's field errors (the first error
    of a field stays)."""
    if "source" in cleaned:
        for name, message in engine.problems(cleaned).items():
            if name in form.fields and name not in form.errors:
                form.add_error(name, message)


class ReportDefinitionForm(forms.ModelForm):
    """A report definition as analysts edit it; every choice offered is within their scope."""

    source = forms.ChoiceField(label="Report")
    grouping = forms.ChoiceField(required=False, help_text="empty: the report's first grouping")
    columns = forms.CharField(
        required=False,
        help_text="column keys separated by commas (see below); empty: every column",
    )
    customer_class = forms.ChoiceField(required=False, label="Customer class (tariff code)")
    quantities = forms.CharField(
        required=False,
        help_text="data query only: OBIS codes separated by commas, e.g. 1-0:1.8.0*255",
    )

    class Meta:
        model = ReportDefinition
        fields = DEFINITION_FIELDS
        widgets = {
            "period_from": forms.DateInput(attrs={"type": "date"}),
            "period_to": forms.DateInput(attrs={"type": "date"}),
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = engine.source_choices(user)
        self.fields["organisation"].queryset = Organisation.objects.restrict(user, "view")
        self.fields["node"].queryset = (
            GridNode.objects.restrict(user, "view")
            .exclude(kind=NodeKind.SERVICE_POINT)
            .order_by("path")
        )
        self.fields["meter_model"].queryset = MeterModel.objects.restrict(user, "view")
        classes = (
            Customer.objects.restrict(user, "view")
            .exclude(tariff_code="")
            .values_list("tariff_code", flat=True)
            .distinct()
            .order_by("tariff_code")
        )
        self.fields["customer_class"].choices = [("", "every class")] + [(c, c) for c in classes]
        self.fields["grouping"].choices = [("", "default")] + [
            (source.title, [(key, g.label) for key, g in source.groupings.items()])
            for source in engine.SOURCES.values()
        ]
        if self.instance.pk and not self.is_bound:
            self.initial["columns"] = ", ".join(self.instance.columns or [])
            self.initial["quantities"] = ", ".join(self.instance.quantities or [])

    @staticmethod
    def _listed(text: str) -> list[str]:
        return [c.strip() for c in (text or "").replace("\n", ",").split(",") if c.strip()]

    def clean_columns(self):
        return self._listed(self.cleaned_data.get("columns"))

    def clean_quantities(self):
        return self._listed(self.cleaned_data.get("quantities"))

    def clean(self):
        cleaned = super().clean()
        if node_outside(cleaned.get("node"), cleaned.get("organisation")):
            self.add_error("node", NODE_OUTSIDE)
        add_problems(self, cleaned)
        return cleaned


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ReportScheduleForm(forms.ModelForm):
    """When a definition runs and who gets it: staff of its organisation only."""

    class Meta:
        model = ReportSchedule
        fields = ["frequency", "at", "weekday", "day_of_month", "fmt", "recipients", "enabled"]
        widgets = {
            "at": forms.TimeInput(attrs={"type": "time"}),
            "weekday": forms.Select(choices=list(enumerate(WEEKDAYS))),
            "recipients": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, user, definition, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.definition = definition
        self.fields["recipients"].queryset = recipients_for(user, definition)
        self.fields[
            "recipients"
        ].help_text = f"active staff of {definition.organisation} with an e-mail address"


def recipients_for(user, definition):
    """Who may receive a definition's schedule: active users of its organisation, with an
    e-mail address, that `user` may see."""
    return (
        User.objects.restrict(user, "view")
        .filter(organisation_id=definition.organisation_id, is_active=True)
        .exclude(email="")
        .order_by("username")
    )
