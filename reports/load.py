"""Load analysis per feeder and transformer, and per customer class (issue 16).

A node's load is its check meters' net active energy per interval (`Meter.check_node`), or,
without a check meter, the sum over the meters below it (then `source` says so); a customer
class is the meters whose service point supplies a customer of that tariff code
(`Customer.tariff_code`). Energy per interval becomes average demand over the interval:
kW = Wh / interval hours / 1000 (15-minute profiles: x 4). Per period:

* peak demand and its time (the end of the interval), average demand, load factor =
  average / peak (intervals with a value only);
* the load-duration curve: demand sorted from the highest, sampled to at most
  `CURVE_POINTS` points for the graph (the export carries every interval);
* for a transformer with a rating: its capacity in kW = `rated_kva` x
  `AMI_LOAD_POWER_FACTOR` (default 0.9), the peak as a share of it, and the hours above it
  (intervals above the capacity x interval length).

Read in the reader's scope (`restrict(user, "view")`); energies through
`balance.interval_totals` (one summing statement per profile channel on PostgreSQL, derived
energy for cumulative profiles).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from meters.choices import NodeKind
from meters.models import GridNode, Meter
from meters.store.days import local_zone

from .balance import INTERVAL_S, MAX_INTERVAL_DAYS, interval_totals, plain
from .billing import Period

CURVE_POINTS = 200
HOURS_PER_INTERVAL = Decimal(INTERVAL_S) / Decimal(3600)
KW = Decimal(1000)


def power_factor() -> Decimal:
    return Decimal(str(getattr(settings, "AMI_LOAD_POWER_FACTOR", "0.9")))


@dataclass
class LoadProfile:
    """One node's or class's demand over a period, with its figures."""

    key: str
    name: str
    source: str  # "check meters", "meters below" or "customer class"
    meters: int
    demand: list[tuple[datetime, Decimal]] = field(default_factory=list)  # (interval end, kW)
    rated_kw: Decimal | None = None
    node: GridNode | None = None

    @property
    def peak(self) -> tuple[datetime, Decimal] | None:
        return max(self.demand, key=lambda p: (p[1], -p[0].timestamp()), default=None)

    def _mean(self) -> Decimal | None:
        return sum(kw for _t, kw in self.demand) / len(self.demand) if self.demand else None

    @property
    def average(self) -> Decimal | None:
        mean = self._mean()
        return None if mean is None else mean.quantize(Decimal("0.001"))

    @property
    def load_factor(self) -> Decimal | None:
        """Average over peak demand (unrounded average)."""
        peak = self.peak
        if peak is None or peak[1] <= 0:
            return None
        return (self._mean() / peak[1]).quantize(Decimal("0.001"))

    @property
    def utilisation(self) -> Decimal | None:
        """The peak as a percentage of the transformer's capacity."""
        peak = self.peak
        if peak is None or not self.rated_kw:
            return None
        return (100 * peak[1] / self.rated_kw).quantize(Decimal("0.1"))

    @property
    def overload_hours(self) -> Decimal | None:
        if not self.rated_kw:
            return None
        return plain(sum(1 for _t, kw in self.demand if kw > self.rated_kw) * HOURS_PER_INTERVAL)

    def duration_curve(self, points: int = CURVE_POINTS) -> list[Decimal]:
        """Demand from the highest to the lowest, sampled evenly to at most `points`."""
        ordered = sorted((kw for _t, kw in self.demand), reverse=True)
        if len(ordered) <= points:
            return ordered
        step = (len(ordered) - 1) / (points - 1)
        return [ordered[round(i * step)] for i in range(points)]

    def flags(self) -> list[str]:
        out = []
        if not self.demand:
            out.append("no data")
        if self.overload_hours:
            out.append(f"overloaded {self.overload_hours} h")
        elif self.utilisation is not None and self.utilisation > 80:
            out.append("above 80 % of rating")
        return out


def _demand(sums: dict[datetime, list]) -> list[tuple[datetime, Decimal]]:
    return [(ts, (sums[ts][0] / HOURS_PER_INTERVAL / KW)) for ts in sorted(sums)]


def check_period(period: Period) -> None:
    if (period.last - period.first).days >= MAX_INTERVAL_DAYS:
        raise ValueError(f"load is analysed over at most {MAX_INTERVAL_DAYS} days")


def nodes_for(user, kind: str | None = None):
    nodes = GridNode.objects.restrict(user, "view").filter(
        kind__in=(NodeKind.FEEDER, NodeKind.TRANSFORMER)
    )
    if kind in (NodeKind.FEEDER, NodeKind.TRANSFORMER):
        nodes = nodes.filter(kind=kind)
    return nodes.order_by("path")


def node_load(user, node: GridNode, period: Period) -> LoadProfile:
    """The node's demand per interval: its check meters, else the meters below it."""
    check_period(period)
    meters = Meter.objects.restrict(user, "view")
    checks = list(meters.filter(check_node=node))
    below = list(meters.filter(service_point__path__startswith=node.path))
    source, measured = ("check meters", checks) if checks else ("meters below", below)
    rated = None
    if node.kind == NodeKind.TRANSFORMER and node.rated_kva:
        rated = (node.rated_kva * power_factor()).quantize(Decimal("0.01"))
    profile = LoadProfile(node.code, node.name, source, len(below), rated_kw=rated, node=node)
    if measured:
        profile.demand = _demand(interval_totals(measured, period.start, period.end))
    return profile


def node_loads(user, nodes, period: Period) -> list[LoadProfile]:
    return [node_load(user, node, period) for node in nodes]


def class_loads(user, period: Period) -> list[LoadProfile]:
    """Demand per customer class (tariff code) over the meters in scope that supply one."""
    check_period(period)
    meters = (
        Meter.objects.restrict(user, "view")
        .filter(service_point__customers__isnull=False)
        .values_list("pk", "service_point__customers__tariff_code")
        .distinct()
    )
    by_class: dict[str, set[int]] = defaultdict(set)
    for pk, tariff in meters:
        by_class[tariff or "(none)"].add(pk)
    out = []
    for tariff in sorted(by_class):
        group = list(Meter.objects.filter(pk__in=by_class[tariff]))
        profile = LoadProfile(tariff, f"customer class {tariff}", "customer class", len(group))
        profile.demand = _demand(interval_totals(group, period.start, period.end))
        out.append(profile)
    return out


# ------------------------------------------------------------------ exports and API

COLUMNS = [
    ("key", "node_or_class"), ("source", "source"), ("meters", "meters"),
    ("peak_kw", "peak_kw"), ("peak_at", "peak_at"), ("average_kw", "average_kw"),
    ("load_factor", "load_factor"), ("rated_kw", "rated_kw"),
    ("utilisation", "peak_percent_of_rating"), ("overload_hours", "overload_hours"),
    ("flags", "flags"),
]  # fmt: skip
CURVE_COLUMNS = [("rank", "rank"), ("hours", "hours_at_or_above"), ("kw", "demand_kw"),
                 ("at", "interval_end")]  # fmt: skip


def _round(value: Decimal | None, places: str = "0.001") -> Decimal | None:
    return None if value is None else value.quantize(Decimal(places))


def summary(profile: LoadProfile) -> dict:
    peak = profile.peak
    return {
        "key": profile.key, "name": profile.name, "source": profile.source,
        "meters": profile.meters, "peak_kw": _round(peak[1]) if peak else None,
        "peak_at": peak[0] if peak else None, "average_kw": profile.average,
        "load_factor": profile.load_factor, "rated_kw": profile.rated_kw,
        "utilisation": profile.utilisation, "overload_hours": profile.overload_hours,
        "flags": "; ".join(profile.flags()),
    }  # fmt: skip


def curve_rows(profile: LoadProfile) -> Iterator[dict]:
    """Every interval from the highest demand down: the load-duration curve in full."""
    ordered = sorted(profile.demand, key=lambda p: (-p[1], p[0]))
    for rank, (at, kw) in enumerate(ordered, start=1):
        yield {"rank": rank, "hours": plain(rank * HOURS_PER_INTERVAL), "kw": _round(kw), "at": at}


def as_json(profile: LoadProfile, *, detail: bool = False) -> dict:
    row = summary(profile)

    def text(value):
        return None if value is None else str(value)

    out = {
        "id": profile.node.pk if profile.node else None,
        "key": row["key"], "name": row["name"], "source": row["source"],
        "meters": row["meters"], "peak_kw": text(row["peak_kw"]), "peak_at": row["peak_at"],
        "average_kw": text(row["average_kw"]), "load_factor": text(row["load_factor"]),
        "rated_kw": text(row["rated_kw"]), "peak_percent_of_rating": text(row["utilisation"]),
        "overload_hours": text(row["overload_hours"]), "flags": profile.flags(),
    }  # fmt: skip
    if detail:
        out["duration_curve_kw"] = [text(_round(kw)) for kw in profile.duration_curve()]
        zone = local_zone()
        out["demand"] = [
            {"at": at.astimezone(zone).isoformat(), "kw": text(_round(kw))}
            for at, kw in profile.demand
        ]
    return out
