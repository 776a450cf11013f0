"""The one meter filter of the dashboard: the list, the map data, bulk actions and the export.

`MeterFilter(user, params)` reads the query string (`q`, `node`, `model`, `protocol`,
`status`, `read`, `health`, `link`) and yields the user's scoped meters matching it. Unknown
or out-of-scope values are dropped rather than refused, so a stale bookmark shows more, never
someone else's meters; what was dropped is kept in `rejected`, and actions that change the
meters a filter selects (bulk actions) refuse a filter with anything rejected, since dropping
a value there would widen the action (another region's grid node would select the whole
own region).

It also defines the *health* of a meter as the map colours and the grid roll-ups use it
(`health_expression`): disconnected (its relay last seen open, `CommStatus.relay_state`),
alarm (an open alarm), unreachable, read OK (within a day), stale (older or never).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Case, CharField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from .alarms.models import OPEN_STATES, Alarm
from .choices import RELAY_OPEN, MeterStatus, NodeKind, Protocol
from .models import Customer, GridNode, Meter, MeterModel
from .rollup_cache import cached_per_scope


class ReadAge:
    """Buckets of `CommStatus.last_success` offered as a filter."""

    TODAY = "today"
    RECENT = "1-3d"
    OLD = "over3d"
    NEVER = "never"
    CHOICES = [
        (TODAY, "read today"),
        (RECENT, "1–3 days ago"),
        (OLD, "more than 3 days ago"),
        (NEVER, "never read"),
    ]


class Health:
    """What colour a meter has on the map and how the grid rolls it up."""

    OK = "ok"
    STALE = "stale"
    UNREACHABLE = "unreachable"
    ALARM = "alarm"
    DISCONNECTED = "disconnected"
    ORDER = [OK, STALE, UNREACHABLE, ALARM, DISCONNECTED]
    LABELS = {
        OK: "read OK (24 h)",
        STALE: "stale / never read",
        UNREACHABLE: "unreachable",
        ALARM: "open alarm",
        DISCONNECTED: "disconnected",
    }
    FRESH = timedelta(hours=24)
    # Health is a property of meters in service: the home's figures and the `health` filter
    # both count these registry statuses only.
    STATUSES = (MeterStatus.INSTALLED, MeterStatus.ACTIVE)


class Link:
    """The communication link as the collector last saw it (`CommStatus.unreachable`)."""

    UNREACHABLE = "unreachable"
    CHOICES = [(UNREACHABLE, "unreachable")]


FILTER_KEYS = ("q", "node", "model", "protocol", "status", "read", "health", "link")


def local_day_start(now=None):
    now = now or timezone.now()
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def health_expression(now=None) -> Case:
    """A CASE over the meter's comm status and open alarms: one label, worst first."""
    now = now or timezone.now()
    whens = [
        When(comm_status__relay_state__in=RELAY_OPEN, then=Value(Health.DISCONNECTED)),
        # IN (uncorrelated subquery): PostgreSQL hashes the open alarms' meters once;
        # a correlated EXISTS probed the alarm index per meter (0.6 s at 100k meters).
        When(
            pk__in=Alarm.objects.filter(state__in=OPEN_STATES).values("meter_id"),
            then=Value(Health.ALARM),
        ),
        When(comm_status__unreachable=True, then=Value(Health.UNREACHABLE)),
        When(comm_status__last_success__gte=now - Health.FRESH, then=Value(Health.OK)),
    ]
    return Case(*whens, default=Value(Health.STALE), output_field=CharField())


@dataclass
class MeterFilter:
    """The user's meters narrowed by the dashboard's query parameters."""

    user: object
    params: object = None
    action: str = "view"
    cleaned: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)
    node: GridNode | None = None

    def __post_init__(self):
        params = self.params or {}
        get = params.get
        self.cleaned = {}
        q = (get("q") or "").strip()[:100]
        if q:
            self.cleaned["q"] = q
        node_id = get("node") or ""
        if node_id.isdigit():
            self.node = GridNode.objects.restrict(self.user, "view").filter(pk=int(node_id)).first()
            if self.node:
                self.cleaned["node"] = str(self.node.pk)
        model_id = get("model") or ""
        if model_id.isdigit():
            self.cleaned["model"] = model_id
        if get("protocol") in Protocol.values:
            self.cleaned["protocol"] = get("protocol")
        if get("status") in MeterStatus.values:
            self.cleaned["status"] = get("status")
        if get("read") in dict(ReadAge.CHOICES):
            self.cleaned["read"] = get("read")
        if get("health") in Health.ORDER:
            self.cleaned["health"] = get("health")
        if get("link") in dict(Link.CHOICES):
            self.cleaned["link"] = get("link")
        self.rejected = {
            key: get(key)
            for key in FILTER_KEYS
            if key != "q" and get(key) and key not in self.cleaned
        }

    @property
    def active(self) -> bool:
        return bool(self.cleaned)

    def querystring(self, **extra) -> str:
        return urlencode({**self.cleaned, **{k: v for k, v in extra.items() if v}})

    def queryset(self, base: QuerySet | None = None) -> QuerySet:
        queryset = (base if base is not None else Meter.objects.all()).restrict(
            self.user, self.action
        )
        c = self.cleaned
        if "q" in c:
            q = c["q"]
            # The meters found by serial, by service point and by customer, as one UNION
            # of ids: each part uses its trigram index (and the service point's foreign
            # key). The same three as ORed conditions made PostgreSQL test every meter of
            # the fleet (100,000 meters: ~100 ms for the count, again for the page, against
            # < 3 ms). No DISTINCT on the page's query: the union already has one row a meter.
            points = GridNode.objects.filter(
                Q(code__icontains=q) | Q(address__icontains=q), kind=NodeKind.SERVICE_POINT
            ).values("pk")
            customers = Customer.objects.filter(
                Q(account_number__icontains=q) | Q(name__icontains=q)
            ).values("service_point_id")
            found = (
                Meter.objects.filter(serial__icontains=q)
                .order_by()
                .values("pk")
                .union(
                    Meter.objects.filter(service_point_id__in=points).order_by().values("pk"),
                    Meter.objects.filter(service_point_id__in=customers).order_by().values("pk"),
                )
            )
            queryset = queryset.filter(pk__in=found)
        if self.node is not None:
            queryset = queryset.filter(service_point__path__startswith=self.node.path)
        if "model" in c:
            queryset = queryset.filter(meter_model_id=int(c["model"]))
        if "protocol" in c:
            queryset = queryset.filter(endpoint__protocol=c["protocol"])
        if "status" in c:
            queryset = queryset.filter(status=c["status"])
        if "read" in c:
            queryset = queryset.filter(read_age_q(c["read"]))
        if "health" in c:
            queryset = (
                queryset.filter(status__in=Health.STATUSES)
                .alias(health=health_expression())
                .filter(health=c["health"])
            )
        if "link" in c:
            queryset = queryset.filter(comm_status__unreachable=True)
        return queryset


def read_age_q(bucket: str, now=None) -> Q:
    now = now or timezone.now()
    day_start = local_day_start(now)
    old = now - timedelta(days=3)
    if bucket == ReadAge.TODAY:
        return Q(comm_status__last_success__gte=day_start)
    if bucket == ReadAge.RECENT:
        return Q(comm_status__last_success__lt=day_start, comm_status__last_success__gte=old)
    if bucket == ReadAge.OLD:
        return Q(comm_status__last_success__lt=old)
    return Q(comm_status__isnull=True) | Q(comm_status__last_success__isnull=True)


NODE_INDENT = {NodeKind.SUBSTATION: "· ", NodeKind.FEEDER: "·· "}


# The options change when the grid does (rarely); shared per scope like the roll-ups.
NODE_OPTIONS_SECONDS = 15


def node_options(user, selected: GridNode | None) -> str:
    """The grid-node filter's <option>s: regions, substations and feeders in scope, by path.

    Built in one pass: through the template engine the few hundred options (two tests and
    four lookups each) cost ~35 ms a page at 100,000 meters, a sixth of the meter list.
    Kept per scope for NODE_OPTIONS_SECONDS (loading 500 nodes was still a quarter of the
    list's own Python time); the selected one is marked per request.
    """
    html = cached_per_scope(
        user, "node-options", lambda: _node_options_html(user), NODE_OPTIONS_SECONDS
    )
    if selected is not None:
        mark = f'<option value="{selected.pk}">'
        html = html.replace(mark, f'<option value="{selected.pk}" selected>', 1)
    return mark_safe(html)  # noqa: S308 (built by format_html_join below)


def _node_options_html(user) -> str:
    nodes = (
        GridNode.objects.restrict(user, "view")
        .filter(kind__in=[NodeKind.REGION, NodeKind.SUBSTATION, NodeKind.FEEDER])
        .only("kind", "code", "name", "path")
        .order_by("path")[:500]
    )
    return str(
        format_html_join(
            "",
            '<option value="{}">{}{} {}</option>',
            ((n.pk, NODE_INDENT.get(n.kind, ""), n.code, n.name) for n in nodes),
        )
    )


def filter_choices(user, node: GridNode | None = None) -> dict:
    """Options of the filter form: models and grid nodes the user may see."""
    return {
        "node_options": node_options(user, node),
        "statuses": MeterStatus.choices,
        "protocols": Protocol.choices,
        "read_ages": ReadAge.CHOICES,
        "healths": [(h, Health.LABELS[h]) for h in Health.ORDER],
        "links": Link.CHOICES,
        "models": MeterModel.objects.restrict(user, "view").only("manufacturer", "name"),
    }
