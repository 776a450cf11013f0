"""Dashboard pages of alarms: the live alarm list (acknowledge / clear) and the outage view."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import RFC3986_SUBDELIMS
from django.views import View
from django.views.generic import ListView, TemplateView

from accounts.mixins import ScopedViewMixin

from ..rollup_cache import cached_per_scope
from . import actions as alarm_actions
from .engine import outage_summary
from .events import EventKind
from .models import OPEN_STATES, Alarm, AlarmState, Severity

SAFE = RFC3986_SUBDELIMS + "~:@"  # what reverse() leaves unquoted in a path segment


class AlarmListView(ScopedViewMixin, ListView):
    """Open alarms first (or any state by filter); new ones arrive over `ws/alarms/`."""

    model = Alarm
    paginate_by = 100
    template_name = "meters/alarms.html"

    def get_queryset(self):
        qs = self.scoped_queryset().select_related(
            "meter__meter_model",
            "line",
            "acknowledged_by",  # what the rows show, nothing more
        )
        state = self.request.GET.get("state", "open")
        if state == "open":
            qs = qs.filter(state__in=OPEN_STATES)
        elif state in AlarmState.values:
            qs = qs.filter(state=state)
        kind = self.request.GET.get("kind")
        if kind in EventKind.values:
            qs = qs.filter(kind=kind)
        return qs.order_by("-last_event_at", "-pk")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        visible = self.scoped_queryset().filter(state__in=OPEN_STATES)
        _link_rows(context["object_list"])
        context.update(
            state=self.request.GET.get("state", "open"),
            kind=self.request.GET.get("kind", ""),
            states=AlarmState.choices,
            kinds=EventKind.choices,
            severities=Severity.choices,
            open_count=visible.count(),
            raised_count=visible.filter(state=AlarmState.RAISED).count(),
            outages=listed_outages(self.request.user),
            can_change=self.request.user.has_perm("meters.change_alarm"),
        )
        return context


# Stand-ins for one reverse() per link kind per page; each row's links are then a string
# substitution (100 rows x 3 links were ~300 reverses, a fifth of the page's time).
_PK, _SERIAL = 987654321, "SERIAL-STAND-IN"


def _link_rows(alarms) -> None:
    """Each alarm gets `detail_url`, `acknowledge_url` and `clear_url`, equal to what
    `{% url %}` gives (tests/meters/alarms/test_lifecycle.py compares every row)."""
    detail = reverse("meters:meter-detail", args=[_SERIAL])
    acknowledge = reverse("meters:alarm-transition", args=[_PK, "acknowledge"])
    clear = reverse("meters:alarm-transition", args=[_PK, "clear"])
    for alarm in alarms:
        if alarm.meter_id:  # a line's alarm links to its line or concentrator instead
            alarm.detail_url = detail.replace(_SERIAL, quote(alarm.meter.serial, safe=SAFE))
        alarm.acknowledge_url = acknowledge.replace(str(_PK), str(alarm.pk))
        alarm.clear_url = clear.replace(str(_PK), str(alarm.pk))


# The list's outage panel aggregates every meter below each transformer and feeder with a
# meter off (~200 ms of PostgreSQL at 100,000 meters): shared per scope for as long as the
# home's figures; the outage page itself stays live.
OUTAGE_PANEL_SECONDS = 5


def listed_outages(user) -> dict:
    return cached_per_scope(
        user, "outage-summary", lambda: outage_summary(user), OUTAGE_PANEL_SECONDS
    )


class AlarmTransitionView(ScopedViewMixin, View):
    """POST acknowledge / clear of one alarm, then back to the list."""

    model = Alarm
    verbs = {"acknowledge": alarm_actions.acknowledge_alarm, "clear": alarm_actions.clear_alarm}

    def post(self, request, pk, verb):
        alarm = get_object_or_404(self.scoped_queryset(), pk=pk)
        if verb not in self.verbs or not request.user.has_perm("meters.change_alarm"):
            raise PermissionDenied
        try:
            self.verbs[verb](
                alarm, acting_user=request.user, comment=request.POST.get("comment", "")
            )
        except alarm_actions.AlarmStateError as exc:
            messages.error(request, str(exc))
        return redirect(request.POST.get("next") or "meters:alarms")


class OutageView(ScopedViewMixin, TemplateView):
    """Meters off per transformer and feeder, from open power-failure alarms."""

    model = Alarm
    template_name = "meters/outages.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(outages=outage_summary(self.request.user), **kwargs)
