"""Dashboard pages of alarms: the live alarm list (acknowledge / clear) and the outage view."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views import View
from django.views.generic import ListView, TemplateView

from accounts.mixins import ScopedViewMixin
from amisite import display

from ..rollup_cache import cached_per_scope
from ..views import SAFE_IN_PATH, KeysFirstPaginator, esc
from . import actions as alarm_actions
from .engine import outage_summary
from .events import EventKind
from .models import OPEN_STATES, Alarm, AlarmState, Severity

# The columns `alarm_rows` reads: every column of an alarm, its meter, model, line and user
# was ~300 wide model instances a page.
ALARM_ROW_FIELDS = (
    "reference",
    "link",
    "kind",
    "severity",
    "state",
    "count",
    "last_event_at",
    "last_code",
    "meter__serial",
    "meter__meter_model__manufacturer",
    "meter__meter_model__name",
    "line__key",
    "line__label",
    "line__concentrator",
    "acknowledged_by__username",
)


class AlarmListView(ScopedViewMixin, ListView):
    """Open alarms first (or any state by filter); new ones arrive over `ws/alarms/`."""

    model = Alarm
    paginate_by = 100
    paginator_class = KeysFirstPaginator
    template_name = "meters/alarms.html"

    def get_queryset(self):
        qs = (
            self.scoped_queryset()
            .select_related("meter__meter_model", "line", "acknowledged_by")
            .only(*ALARM_ROW_FIELDS)  # what the rows show, nothing more
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

    @cached_property
    def open_counts(self) -> dict:
        """Open and not yet acknowledged alarms in scope, in one query."""
        return self.scoped_queryset().aggregate(
            open=Count("pk", filter=Q(state__in=OPEN_STATES)),
            raised=Count("pk", filter=Q(state=AlarmState.RAISED)),
        )

    def get_paginator(self, queryset, *args, **kwargs):
        paginator = super().get_paginator(queryset, *args, **kwargs)
        if self.request.GET.get("state", "open") == "open" and not self.request.GET.get("kind"):
            paginator.count = self.open_counts["open"]  # the list is exactly the open ones
        return paginator

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        _link_rows(context["object_list"])
        can_change = self.request.user.has_perm("meters.change_alarm")
        csrf_input = format_html(
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(self.request)
        )
        context.update(
            rows=alarm_rows(context["object_list"], can_change, csrf_input),
            state=self.request.GET.get("state", "open"),
            kind=self.request.GET.get("kind", ""),
            states=AlarmState.choices,
            kinds=EventKind.choices,
            severities=Severity.choices,
            open_count=self.open_counts["open"],
            raised_count=self.open_counts["raised"],
            outages=panel_outages(listed_outages(self.request.user)),
            can_change=can_change,
        )
        return context


# Stand-ins for one reverse() per link kind per page; each row's links are then a string
# substitution (100 rows x 3 links were ~300 reverses, a fifth of the page's time).
_PK, _SERIAL = 987654321, "SERIAL-STAND-IN"
# The labels of the row's choices, built once: a model's get_FOO_display() rebuilds the
# field's whole choice dictionary on every call (300 calls a page).
_KIND_LABELS = dict(EventKind.choices)
_SEVERITY_LABELS = dict(Severity.choices)
_STATE_LABELS = dict(AlarmState.choices)
_ACKNOWLEDGE = '<button name="verb" value="acknowledge">Acknowledge</button>'


def alarm_rows(alarms, can_change: bool, csrf_input: str) -> str:
    """The list's rows as HTML, built here rather than by the template: the template
    engine's per-row lookups, filters and tags were ~60% of the page's CPU (100 rows).
    Every value goes through `esc` (what Django's `escape` does); the output is the
    template's to the byte (tests/meters/alarms/test_lifecycle.py). The JavaScript
    (static/js/alarms.js) builds the same row for an alarm that arrives over the socket."""
    lines = reverse("meters:lines")
    rows = []
    for a in alarms:
        if a.meter_id:
            url, text = a.detail_url, a.meter.serial
        elif a.line_id is None:  # a system alarm: on its reference, linked to its page
            url, text = a.link, a.subject
        elif a.line.concentrator_id:
            url = reverse("meters:concentrator-detail", args=[a.line.concentrator_id])
            text = a.subject
        else:
            url, text = f"{lines}?q={quote(a.line.key, safe='/')}", a.subject
        last = a.last_event
        last = f' <span class="muted">· last: {esc(last)}</span>' if last else ""
        by = f" by {esc(a.acknowledged_by)}" if a.acknowledged_by else ""
        actions = ""
        if can_change and a.state != AlarmState.CLEARED:
            acknowledge = _ACKNOWLEDGE if a.state == AlarmState.RAISED else ""
            actions = (
                f'\n        <form method="post" action="{esc(a.acknowledge_url)}" class="inline">'
                f'{csrf_input}<input name="comment" placeholder="comment" size="12">'
                f'{acknowledge}<button formaction="{esc(a.clear_url)}">Clear</button>'
                "</form>\n      "
            )
        rows.append(
            f'\n    <tr data-alarm="{a.pk}" data-state="{esc(a.state)}">\n'
            f"      <td>{esc(display.when(a.last_event_at, seconds=True))}</td>\n"
            f'      <td><a href="{esc(url)}">{esc(text)}</a></td>\n'
            f"      <td>{esc(_KIND_LABELS.get(a.kind, a.kind))}{last}</td>\n"
            f"      <td>{esc(_SEVERITY_LABELS.get(a.severity, a.severity))}</td>\n"
            f'      <td class="count">{a.count}</td>\n'
            f'      <td class="state">{esc(_STATE_LABELS.get(a.state, a.state))}{by}</td>\n'
            f"      <td>{actions}</td>\n    </tr>\n  "
        )
    return mark_safe("".join(rows))


def _link_rows(alarms) -> None:
    """Each alarm gets `detail_url`, `acknowledge_url` and `clear_url`, equal to what
    `{% url %}` gives (tests/meters/alarms/test_lifecycle.py compares every row)."""
    detail = reverse("meters:meter-detail", args=[_SERIAL])
    acknowledge = reverse("meters:alarm-transition", args=[_PK, "acknowledge"])
    clear = reverse("meters:alarm-transition", args=[_PK, "clear"])
    for alarm in alarms:
        if alarm.meter_id:  # a line's alarm links to its line or concentrator instead
            alarm.detail_url = detail.replace(_SERIAL, quote(alarm.meter.serial, safe=SAFE_IN_PATH))
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


# The alarm list shows the largest outages only, the rest on the outage page: a storm's
# hundreds of transformers were most of the list's time (~650 values rendered a page).
OUTAGE_PANEL_ROWS = 20


def panel_outages(summary: dict, rows: int = OUTAGE_PANEL_ROWS) -> dict:
    """`summary` (`outage_summary`) with at most `rows` transformers and feeders (the most
    meters off first, as sorted there), how many more of each, and the limit."""
    panel = dict(summary, limit=rows)
    for level in ("transformers", "feeders"):
        panel[level] = summary[level][:rows]
        panel[f"more_{level}"] = max(0, len(summary[level]) - rows)
    return panel


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
