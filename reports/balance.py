"""Energy balance and line loss per feeder and transformer, tied to the grid model (issue 16).

A feeder or transformer's *input* is what its check meters measured (`Meter.check_node`:
meters at the feeder head or the transformer's secondary, serving no service point); its
*delivered* energy is the sum over the meters whose service point lies below it. Both sides
are net active energy: import (+A) minus export (-A), so customers' solar export that flows
back through the node is counted on both sides. Energy comes from the profile channels of
either style (`interval_energy.energy_codes`: 1.29.0 interval values or 1.8.0 cumulative
captures), multiplied by each meter's CT and VT ratios (a check meter is usually
CT-connected; a whole-current meter has 1 and 1).

    loss = input - delivered          loss % = 100 * loss / input

per interval (one node, at most `MAX_INTERVAL_DAYS` days), per local day (from the daily
rollup) and per local month. A bucket is *complete* when every check meter and every
downstream meter has all the bucket's intervals (15-minute profiles: a day of 96, 92 or 100);
an incomplete bucket keeps its figures but no loss %, since a missing meter looks like loss.

Hints (`hints`) separate what looks technical from what does not, from the complete
intervals of the period: the loss is fitted as `a + b * delivered` (least squares); `a` is
the no-load part (transformer iron loss, or a constant unmetered load), `b` the part that
grows with load. Copper and line losses grow with load too, but by a few per cent; a
load-dependent part above `AMI_TECHNICAL_LOAD_LOSS_PERCENT` (default 6) points at
non-technical loss. Below a node, a meter whose daily share of the delivered energy falls
when the loss rises (correlation <= -0.7 over at least 5 complete days) is named: the
pattern of a meter bypassed or slowed part of the time.

Every figure is read in the reader's scope: nodes by `GridNode.objects.restrict(user)`,
meters by `Meter.objects.restrict(user)`; a meter out of scope counts on neither side.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connections, router
from django.db.models import Count, Sum

from meters.choices import ChannelKind, NodeKind
from meters.models import CHECKED_KINDS, Channel, GridNode, Meter
from meters.store import DailyEnergy
from meters.store.days import day_bounds, local_zone
from meters.store.interval_energy import energy_codes, energy_series, is_cumulative
from meters.store.models import StoredInterval

from .billing import Period

IMPORT, EXPORT = "1-0:1.8.0*255", "1-0:2.8.0*255"
RESOLUTIONS = ("day", "month", "interval")
MAX_INTERVAL_DAYS = 31
INTERVAL_S = 900
SHARE_CORRELATION = -0.7
MIN_DAYS_FOR_SHARES = 5
MIN_INTERVALS_FOR_FIT = 48
NIGHT_HOURS = range(0, 5)  # local hours counted as night / no load
HUNDRED = Decimal(100)


def alert_percent() -> Decimal:
    """A loss above this share of the input is flagged."""
    return Decimal(str(getattr(settings, "AMI_LOSS_ALERT_PERCENT", "8")))


def technical_load_percent() -> Decimal:
    """The most of delivered energy that load-dependent technical losses explain."""
    return Decimal(str(getattr(settings, "AMI_TECHNICAL_LOAD_LOSS_PERCENT", "6")))


def quantity_codes() -> dict[str, int]:
    """Profile codes of import (+1) and export (-1) active energy, in either style."""
    return {
        **{code: 1 for code in energy_codes(IMPORT)},
        **{code: -1 for code in energy_codes(EXPORT)},
    }


def plain(value: Decimal) -> Decimal:
    """`value` without trailing zeros and never in exponent form (19488.000000 -> 19488)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _day_intervals(day: date) -> int:
    start, end = day_bounds(day, local_zone())
    return round((end - start).total_seconds() / INTERVAL_S)


@dataclass
class Bucket:
    """One interval, day or month of a node: input vs delivered net energy in Wh."""

    label: str
    start: datetime | date
    input: Decimal | None = None
    delivered: Decimal | None = None
    complete: bool = False

    @property
    def loss(self) -> Decimal | None:
        if self.input is None or self.delivered is None:
            return None
        return self.input - self.delivered

    @property
    def loss_percent(self) -> Decimal | None:
        """Loss as a share of the input; None when incomplete or nothing came in."""
        if not self.complete or self.loss is None or not self.input or self.input <= 0:
            return None
        return (HUNDRED * self.loss / self.input).quantize(Decimal("0.01"))


@dataclass
class MeterShare:
    """A downstream meter (or child node) of a node: its net energy and share over the period."""

    meter: Meter | None
    node: GridNode | None
    delivered: Decimal
    share: Decimal | None
    correlation: float | None = None
    flags: list[str] = field(default_factory=list)


@dataclass
class NodeBalance:
    """A feeder's or transformer's energy balance over a period."""

    node: GridNode
    check_meters: list[Meter]
    meters: int
    resolution: str
    buckets: list[Bucket] = field(default_factory=list)
    total: Bucket | None = None
    flags: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    children: list[NodeBalance] = field(default_factory=list)
    shares: list[MeterShare] = field(default_factory=list)

    @property
    def complete_buckets(self) -> int:
        return sum(b.complete for b in self.buckets)


# ------------------------------------------------------------------ scope


def nodes_for(user, *, kind: str | None = None, within: GridNode | None = None):
    """Feeders and transformers in the reader's scope (optionally one kind, one subtree)."""
    nodes = GridNode.objects.restrict(user, "view").filter(kind__in=CHECKED_KINDS)
    if kind in CHECKED_KINDS:
        nodes = nodes.filter(kind=kind)
    if within is not None:
        nodes = nodes.filter(path__startswith=within.path)
    return nodes.select_related("parent").order_by("path")


def _scoped_meters(user):
    return Meter.objects.restrict(user, "view")


# ------------------------------------------------------------------ daily figures


@dataclass
class _Side:
    """Accumulates one side of a node-day: net Wh, meters and intervals reporting import."""

    net: Decimal = Decimal(0)
    meters: int = 0
    intervals: int = 0


def energy_channels() -> dict[int, tuple[int, int]]:
    """{channel id: (sign, scaler)} of every import (+1) / export (-1) profile channel."""
    codes = quantity_codes()
    channels = Channel.objects.filter(kind=ChannelKind.PROFILE, obis__in=list(codes)).order_by()
    return {pk: (codes[obis], scaler) for pk, obis, scaler in channels.values_list(
        "pk", "obis", "scaler")}  # fmt: skip


def _daily_sides(meters, key: str, first: date, last: date) -> dict[tuple[int, date], _Side]:
    """{(node id, day): side} summed in SQL over `meters`, the node named by `key`.

    Integers are summed per channel and CT/VT ratio pair (a handful of groups per node-day)
    and scaled here, so the database adds bigints instead of multiplying numerics per row;
    a (meter, channel, day) rollup row is unique, so a plain count counts meters."""
    channels = energy_channels()
    rows = (
        DailyEnergy.objects.filter(
            meter__in=meters, channel_id__in=list(channels), day__gte=first, day__lte=last
        )
        .values_list(key, "day", "channel_id", "meter__ct_ratio", "meter__vt_ratio")
        .annotate(total=Sum("value"), meters=Count("*"), intervals=Sum("intervals"))
        .order_by()
    )
    out: dict[tuple[int, date], _Side] = defaultdict(_Side)
    for node, day, channel, ct, vt, total, meters_, intervals in rows:
        if node is None:
            continue
        side = out[(node, day)]
        sign, scaler = channels[channel]
        side.net += sign * plain(Decimal(total).scaleb(scaler) * ct * vt)
        if sign > 0:
            side.meters += meters_
            side.intervals += intervals
    return out


def _node_of_meter(node: GridNode) -> str:
    """The path from a downstream meter to a node of `node`'s kind."""
    if node.kind == NodeKind.TRANSFORMER:
        return "service_point__parent_id"
    return "service_point__parent__parent_id"


def _counts(meters, key: str) -> dict[int, int]:
    return dict(meters.values(key).annotate(n=Count("pk")).values_list(key, "n").order_by())


def _day_bucket(day: date, check: _Side | None, down: _Side | None, n_check, n_down) -> Bucket:
    full = _day_intervals(day)
    complete = bool(
        n_check
        and check is not None
        and check.intervals >= n_check * full
        and (not n_down or (down is not None and down.intervals >= n_down * full))
    )
    return Bucket(
        label=day.isoformat(),
        start=day,
        input=check.net if check else None,
        delivered=(down.net if down else (Decimal(0) if not n_down else None)),
        complete=complete,
    )


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None:
        return b
    return a if b is None else a + b


def _merge(label: str, start, buckets: list[Bucket]) -> Bucket:
    merged = Bucket(label, start, complete=bool(buckets) and all(b.complete for b in buckets))
    for b in buckets:
        merged.input = _add(merged.input, b.input)
        merged.delivered = _add(merged.delivered, b.delivered)
    return merged


def _months(days: list[Bucket]) -> list[Bucket]:
    by_month: dict[date, list[Bucket]] = defaultdict(list)
    for bucket in days:
        by_month[bucket.start.replace(day=1)].append(bucket)
    return [_merge(f"{m:%Y-%m}", m, by_month[m]) for m in sorted(by_month)]


def _flags(balance: NodeBalance) -> list[str]:
    flags = []
    if not balance.check_meters:
        flags.append("no check meter")
    total = balance.total
    incomplete = len(balance.buckets) - balance.complete_buckets
    if balance.check_meters and incomplete:
        flags.append(f"{incomplete} of {len(balance.buckets)} incomplete")
    if total is not None and total.loss is not None and total.complete:
        if total.loss < 0:
            flags.append("negative loss")
        elif total.loss_percent is not None and total.loss_percent > alert_percent():
            flags.append("loss above alert")
    return flags


def balances(user, nodes, period: Period, resolution: str = "day") -> list[NodeBalance]:
    """Daily (or monthly) balance of every node in `nodes` (already scoped), from the rollup:
    a few statements whatever the number of nodes."""
    nodes = list(nodes)
    if not nodes:
        return []
    meters = _scoped_meters(user)
    checks_by_node: dict[int, list[Meter]] = defaultdict(list)
    for meter in meters.filter(check_node__in=nodes).order_by("serial"):
        checks_by_node[meter.check_node_id].append(meter)
    out = []
    for kind in CHECKED_KINDS:
        of_kind = [n for n in nodes if n.kind == kind]
        if not of_kind:
            continue
        key = _node_of_meter(of_kind[0])
        ids = [n.pk for n in of_kind]
        downstream = meters.filter(**{f"{key}__in": ids})
        down = _daily_sides(downstream, f"meter__{key}", period.first, period.last)
        checks = meters.filter(check_node__in=ids)
        check = _daily_sides(checks, "meter__check_node_id", period.first, period.last)
        n_down = _counts(downstream, key)
        for node in of_kind:
            n_check = len(checks_by_node[node.pk])
            days = [
                _day_bucket(
                    day,
                    check.get((node.pk, day)),
                    down.get((node.pk, day)),
                    n_check,
                    n_down.get(node.pk, 0),
                )
                for day in period_days(period)
            ]
            balance = NodeBalance(node, checks_by_node[node.pk], n_down.get(node.pk, 0), resolution)
            balance.buckets = _months(days) if resolution == "month" else days
            balance.total = _merge(period.label, period.first, days)
            balance.flags = _flags(balance)
            out.append(balance)
    order = {n.pk: i for i, n in enumerate(nodes)}
    return sorted(out, key=lambda b: order[b.node.pk])


def period_days(period: Period) -> Iterator[date]:
    day = period.first
    while day <= period.last:
        yield day
        day += timedelta(days=1)


# ------------------------------------------------------------------ one node, in detail


def node_balance(user, node: GridNode, period: Period, resolution: str = "day") -> NodeBalance:
    """One node's balance with hints and the drill-down: a feeder's transformers, or a
    transformer's meters (their shares and how each share moves with the loss)."""
    short = (period.last - period.first).days < MAX_INTERVAL_DAYS
    if resolution == "interval" and not short:
        raise ValueError(f"intervals are shown for at most {MAX_INTERVAL_DAYS} days")
    daily = balances(user, [node], period, "day")[0]
    intervals = interval_buckets(user, node, period, daily.check_meters) if short else []
    if resolution == "day":
        balance = daily
    else:
        buckets = intervals if resolution == "interval" else _months(daily.buckets)
        balance = NodeBalance(
            node, daily.check_meters, daily.meters, resolution, buckets, daily.total
        )
        balance.flags = _flags(balance)
    balance.hints = hints(intervals, daily.total)
    if node.kind == NodeKind.FEEDER:
        balance.children = balances(
            user, nodes_for(user, kind=NodeKind.TRANSFORMER, within=node), period, "day"
        )
    balance.shares = meter_shares(user, node, daily, period)
    return balance


def _downstream(user, node: GridNode):
    return _scoped_meters(user).filter(service_point__path__startswith=node.path)


def meter_shares(user, node: GridNode, daily: NodeBalance, period: Period) -> list[MeterShare]:
    """Each downstream meter's net energy and share over the period; a meter whose daily
    share falls as the daily loss % rises is flagged."""
    meters = {
        m.pk: m for m in _downstream(user, node).select_related("service_point").order_by("serial")
    }
    sides = _daily_sides(
        Meter.objects.filter(pk__in=list(meters)), "meter_id", period.first, period.last
    )
    complete = {b.start: b for b in daily.buckets if b.complete and b.delivered}
    by_meter: dict[int, dict[date, Decimal]] = defaultdict(dict)
    for (meter_id, day), side in sides.items():
        by_meter[meter_id][day] = side.net
    total = sum((s.net for s in sides.values()), Decimal(0))
    out = []
    for meter_id, meter in meters.items():
        own = by_meter.get(meter_id, {})
        net = sum(own.values(), Decimal(0))
        share = MeterShare(meter, None, net, (HUNDRED * net / total).quantize(Decimal("0.01"))
                           if total else None)  # fmt: skip
        days = sorted(complete)
        if len(days) >= MIN_DAYS_FOR_SHARES:
            shares = [float(own.get(d, 0) / complete[d].delivered) for d in days]
            losses = [float(complete[d].loss_percent or 0) for d in days]
            try:
                share.correlation = round(statistics.correlation(shares, losses), 3)
            except statistics.StatisticsError:  # a constant series
                share.correlation = None
            if share.correlation is not None and share.correlation <= SHARE_CORRELATION:
                share.flags.append(
                    f"its share falls when the loss rises (r = {share.correlation}): "
                    "inspect it (bypass, slow or stopped meter)"
                )
        out.append(share)
    # the suspicious first, then by how strongly the share moves against the loss
    return sorted(out, key=lambda s: (not s.flags, s.correlation is None, s.correlation or 0))


def interval_totals(meters: list[Meter], start: datetime, end: datetime) -> dict[datetime, list]:
    """{interval end: [net Wh, meters with an import value]} over `meters` (ratios applied).

    Interval channels on PostgreSQL: one statement per channel summing over the meters;
    cumulative channels (and SQLite): each meter's derived energy (`energy_series`)."""
    codes = quantity_codes()
    by_model: dict[int, list[Meter]] = defaultdict(list)
    for meter in meters:
        by_model[meter.meter_model_id].append(meter)
    out: dict[datetime, list] = defaultdict(lambda: [Decimal(0), 0])
    channels = Channel.objects.filter(
        meter_model_id__in=list(by_model), kind=ChannelKind.PROFILE, obis__in=list(codes)
    ).exclude(profile_column=None)
    for channel in channels:
        sign = codes[channel.obis]
        group = by_model[channel.meter_model_id]
        if _store_connection().vendor == "postgresql" and not is_cumulative(channel):
            rows = _summed_column(group, channel, start, end)
        else:
            rows = _derived_column(group, channel, start, end)
        for ts, total, count in rows:
            cell = out[ts]
            cell[0] += sign * plain(Decimal(total).scaleb(channel.scaler))
            if sign > 0:
                cell[1] += count
    return out


def _store_connection():
    """The store's database for reading (the replica while a report request reads from it)."""
    return connections[router.db_for_read(StoredInterval)]


_COLUMN_SUM_SQL = """
SELECT i.ts, SUM(i.v{column} * m.ct_ratio * m.vt_ratio), COUNT(i.v{column})
FROM {table} i JOIN {meters} m ON m.id = i.meter_id
WHERE i.meter_id = ANY(%s) AND i.grp = %s AND i.ts > %s AND i.ts <= %s
    AND i.day >= %s AND i.day <= %s
GROUP BY i.ts
"""


def _summed_column(meters, channel, start, end) -> Iterable[tuple[datetime, Decimal, int]]:
    sql = _COLUMN_SUM_SQL.format(
        column=channel.profile_column,
        table=StoredInterval._meta.db_table,
        meters=Meter._meta.db_table,
    )
    lo, hi = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    with _store_connection().cursor() as cursor:
        cursor.execute(sql, [[m.pk for m in meters], channel.profile_group, start, end, lo, hi])
        return [(ts, total or 0, count) for ts, total, count in cursor.fetchall()]


def _derived_column(meters, channel, start, end) -> Iterator[tuple[datetime, Decimal, int]]:
    for meter in meters:
        ratio = meter.ct_ratio * meter.vt_ratio
        for ts, value, _flags in energy_series(meter.pk, channel, start, end):
            if value is not None:
                yield ts, Decimal(value) * ratio, 1


def interval_buckets(user, node: GridNode, period: Period, check_meters) -> list[Bucket]:
    """The node's balance per interval of the period (at most `MAX_INTERVAL_DAYS` days)."""
    if (period.last - period.first).days >= MAX_INTERVAL_DAYS:
        return []
    downstream = list(_downstream(user, node))
    down = interval_totals(downstream, period.start, period.end)
    check = interval_totals(list(check_meters), period.start, period.end)
    buckets = []
    zone = local_zone()
    for ts in sorted(set(down) | set(check)):
        c, d = check.get(ts), down.get(ts)
        complete = bool(
            check_meters
            and c is not None
            and c[1] >= len(check_meters)
            and (not downstream or (d is not None and d[1] >= len(downstream)))
        )
        buckets.append(
            Bucket(
                label=ts.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                start=ts,
                input=c[0] if c else None,
                delivered=d[0] if d else (Decimal(0) if not downstream else None),
                complete=complete,
            )
        )
    return buckets


def hints(intervals: list[Bucket], total: Bucket | None) -> list[str]:
    """Technical vs non-technical hints from the complete intervals (see the module doc)."""
    out = []
    if total is not None and total.loss is not None and total.complete and total.loss < 0:
        out.append(
            "The downstream meters recorded more than the check meter: check its CT/VT "
            "ratios and wiring, or meters assigned to the wrong node."
        )
    points = [b for b in intervals if b.complete and b.loss is not None]
    if len(points) < MIN_INTERVALS_FOR_FIT:
        if intervals:
            out.append(
                f"Too few complete intervals ({len(points)}) to tell technical from "
                "non-technical loss."
            )
        return out
    load = [float(b.delivered) for b in points]
    loss = [float(b.loss) for b in points]
    try:
        slope, intercept = statistics.linear_regression(load, loss)
    except statistics.StatisticsError:  # constant load
        return out
    total_loss = sum(loss)
    zone = local_zone()
    night = [b for b in points if b.start.astimezone(zone).hour in NIGHT_HOURS]
    night_loss = sum(float(b.loss) for b in night) / len(night) if night else None
    if total_loss > 0:
        no_load = max(intercept, 0) * len(points)
        out.append(
            f"No-load part: about {max(intercept, 0):.0f} Wh per interval, "
            f"{100 * no_load / total_loss:.0f}% of the loss (transformer iron loss is "
            "constant; a large constant part may also be an unmetered constant load)."
        )
    if night_loss is not None:
        out.append(f"Average loss at night (00:00-05:00): {night_loss:.0f} Wh per interval.")
    percent = Decimal(str(round(100 * slope, 2)))
    if percent > technical_load_percent():
        out.append(
            f"Load-dependent part: {percent}% of delivered energy, more than line and copper "
            f"losses explain (up to {technical_load_percent()}%): suspect non-technical loss "
            "(unmetered load, a bypassed or slow meter)."
        )
    else:
        out.append(
            f"Load-dependent part: {percent}% of delivered energy, within what line and "
            "copper losses explain (technical)."
        )
    return out


def short_label(bucket: Bucket, resolution: str, period: Period) -> str:
    """An x-axis label: the time of day for one day's intervals, else day and time; days
    as day and month; months as they are."""
    if resolution == "interval":
        local = bucket.start.astimezone(local_zone())
        return f"{local:%H:%M}" if period.first == period.last else f"{local:%d %b %H:%M}"
    if resolution == "day":
        return f"{bucket.start:%d %b}"
    return bucket.label


# ------------------------------------------------------------------ exports

LIST_COLUMNS = [
    ("code", "node"), ("kind", "kind"), ("name", "name"), ("parent", "parent"),
    ("check_meters", "check_meters"), ("meters", "downstream_meters"),
    ("input", "input_wh"), ("delivered", "delivered_wh"), ("loss", "loss_wh"),
    ("loss_percent", "loss_percent"), ("complete", "complete_days"), ("days", "days"),
    ("flags", "flags"),
]  # fmt: skip
BUCKET_COLUMNS = [
    ("code", "node"), ("bucket", "bucket"), ("input", "input_wh"),
    ("delivered", "delivered_wh"), ("loss", "loss_wh"), ("loss_percent", "loss_percent"),
    ("complete", "complete"),
]  # fmt: skip


def list_rows(results: Iterable[NodeBalance]) -> Iterator[dict]:
    for b in results:
        total = b.total
        yield {
            "code": b.node.code, "kind": b.node.kind, "name": b.node.name,
            "parent": b.node.parent.code if b.node.parent_id else "",
            "check_meters": " ".join(m.serial for m in b.check_meters), "meters": b.meters,
            "input": total.input, "delivered": total.delivered, "loss": total.loss,
            "loss_percent": total.loss_percent, "complete": b.complete_buckets,
            "days": len(b.buckets), "flags": "; ".join(b.flags),
        }  # fmt: skip


def bucket_rows(balance: NodeBalance) -> Iterator[dict]:
    for bucket in balance.buckets:
        yield {
            "code": balance.node.code, "bucket": bucket.label, "input": bucket.input,
            "delivered": bucket.delivered, "loss": bucket.loss,
            "loss_percent": bucket.loss_percent, "complete": bucket.complete,
        }  # fmt: skip


def as_json(balance: NodeBalance, *, detail: bool = False) -> dict:
    """A node's balance for the API: energies as exact decimal strings (Wh)."""

    def text(value):
        return None if value is None else str(value)

    def bucket(b: Bucket) -> dict:
        return {
            "bucket": b.label, "input_wh": text(b.input), "delivered_wh": text(b.delivered),
            "loss_wh": text(b.loss), "loss_percent": text(b.loss_percent),
            "complete": b.complete,
        }  # fmt: skip

    out = {
        "id": balance.node.pk,
        "code": balance.node.code,
        "kind": balance.node.kind,
        "name": balance.node.name,
        "check_meters": [m.serial for m in balance.check_meters],
        "meters": balance.meters,
        "total": bucket(balance.total),
        "flags": balance.flags,
    }
    if detail:
        out["resolution"] = balance.resolution
        out["buckets"] = [bucket(b) for b in balance.buckets]
        out["hints"] = balance.hints
        out["children"] = [as_json(child) for child in balance.children]
        out["meter_shares"] = [
            {
                "serial": s.meter.serial,
                "delivered_wh": text(s.delivered),
                "share_percent": text(s.share),
                "share_loss_correlation": s.correlation,
                "flags": s.flags,
            }  # fmt: skip
            for s in balance.shares
        ]
    return out
