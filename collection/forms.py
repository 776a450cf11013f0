"""Forms of the collection app: read jobs as operators define them in the dashboard."""

from __future__ import annotations

from django import forms

from accounts.models import Organisation
from meters.models import GridNode, MeterModel

from .choices import ReadItem
from .models import ReadJob
from .scheduling import parse_crontab


class ReadJobForm(forms.ModelForm):
    """A read job; every choice offered is within the user's scope."""

    items = forms.MultipleChoiceField(choices=ReadItem.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ReadJob
        fields = [
            "name", "organisation", "items", "grid_node", "meter_model", "crontab", "every_minutes",
            "window_minutes", "backfill_days", "batch_size", "concurrency", "retries",
            "retry_backoff_s", "clock_drift_limit_s", "sync_clock", "clock_max_adjust_s", "enabled",
        ]  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = Organisation.objects.restrict(user, "view")
        self.fields["grid_node"].queryset = GridNode.objects.restrict(user, "view").exclude(
            kind="service_point"
        )
        self.fields["meter_model"].queryset = MeterModel.objects.restrict(user, "view")
        # Either schedule will do: the crontab is needed only without "every N minutes".
        self.fields["crontab"].required = False

    def clean_crontab(self):
        value = (self.cleaned_data["crontab"] or "").strip()
        if not value:
            return value
        try:
            parse_crontab(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("crontab") and not cleaned.get("every_minutes"):
            if "crontab" not in self.errors and "every_minutes" not in self.errors:
                self.add_error("crontab", "Give a crontab, or run every so many minutes.")
        node, org = cleaned.get("grid_node"), cleaned.get("organisation")
        if node is not None and org is not None and not node.organisation.path.startswith(org.path):
            self.add_error("grid_node", "This grid node is outside the job's organisation.")
        return cleaned
