"""Tamper, revenue protection and communication per meter, ranked (issue 16).

For every meter in the reader's scope that serves a service point, over a period of local
days (with the period of the same length before it as the meter's own history):

* tamper events (cover and terminal cover opened, magnetic field) and reverse-energy events
  from its event logs, by their kind (`meters.alarms.events.kind_of`, per meter model);
* consumption (net import, from the daily rollup) against its own previous period: a drop
  of more than `AMI_TAMPER_DROP_PERCENT` (default 50) is flagged; and against its peers
  (the meters under the same transformer): below `AMI_TAMPER_PEER_SHARE` (default 0.3) of
  their median is flagged;
* consumption while its relay is open (`CommStatus.relay_state`, energy after the relay
  was seen open);
* communication: unreachable now, days since the last successful read, the share of its
  scheduled reads in the period that succeeded, and the median read time (a read slower
  than `AMI_SLOW_READ_SECONDS`, default 30, flags it).

Each finding adds to a score (`WEIGHTS`); meters are ranked by score, then by serial.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from collection.choices import ResultStatus
from collection.models import MeterReadResult
from meters.alarms.events import EventKind, kind_of
from meters.choices import RELAY_OPEN
from meters.models import CommStatus, Meter
from meters.store import DailyEnergy, EventRecord
from meters.store.days import day_bounds, local_zone

from .balance import energy_channels, plain
from .billing import Period

TAMPER_KINDS = (EventKind.COVER_OPEN, EventKind.TERMINAL_COVER_OPEN, EventKind.MAGNETIC_TAMPER)
WEIGHTS = {
    "tamper": 3, "reverse": 2, "drop": 3, "peers": 2, "disconnected": 4,
    "unreachable": 1, "success": 1, "slow": 1,
}  # fmt: skip
HUNDRED = Decimal(100)


def _setting(name: str, default: str) -> Decimal:
    return Decimal(str(getattr(settings, name, default)))


@dataclass
class MeterFindings:
    meter: Meter
    tamper_events: int = 0
    last_tamper: datetime | None = None
    reverse_events: int = 0
    consumption: Decimal | None = None
    previous: Decimal | None = None
    peer_median: Decimal | None = None
    open_relay_energy: Decimal | None = None
    unreachable: bool = False
    last_success: datetime | None = None
    reads: int = 0
    reads_ok: int = 0
    read_seconds: float | None = None
    flags: list[str] = field(default_factory=list)
    score: int = 0

    @property
    def change_percent(self) -> Decimal | None:
        if self.consumption is None or not self.previous or self.previous <= 0:
            return None
        return (HUNDRED * (self.consumption - self.previous) / self.previous).quantize(
            Decimal("0.1")
        )

    @property
    def success_percent(self) -> Decimal | None:
        if not self.reads:
            return None
        return (HUNDRED * self.reads_ok / self.reads).quantize(Decimal("0.1"))

    @property
    def days_since_read(self) -> int | None:
        if self.last_success is None:
            return None
        return (timezone.now() - self.last_success).days


def meters_for(user):
    """Customer meters in scope (check meters have their own report: the energy balance)."""
    return (
        Meter.objects.restrict(user, "view")
        .filter(service_point__isnull=False)
        .select_related("service_point", "meter_model")
        .order_by("serial")
    )


def _net_by_meter(meter_ids, first: date, last: date) -> dict[int, Decimal]:
    channels = energy_channels()
    rows = (
        DailyEnergy.objects.filter(
            meter_id__in=meter_ids, channel_id__in=list(channels), day__gte=first, day__lte=last
        )
        .values_list("meter_id", "channel_id")
        .annotate(total=Sum("value"))
        .order_by()
    )
    out: dict[int, Decimal] = defaultdict(Decimal)
    for meter_id, channel, total in rows:
        sign, scaler = channels[channel]
        out[meter_id] += sign * plain(Decimal(total).scaleb(scaler))
    return out


def _events(found: dict[int, MeterFindings], start: datetime, end: datetime) -> None:
    rows = (
        EventRecord.objects.filter(meter_id__in=list(found), ts__gt=start, ts__lte=end)
        .values_list("meter_id", "log", "code")
        .annotate(n=Count("*"), last=Max("ts"))
        .order_by()
    )
    for meter_id, log, code, n, last in rows:
        finding = found[meter_id]
        kind = kind_of(code, log, finding.meter.meter_model)
        if kind in TAMPER_KINDS:
            finding.tamper_events += n
            if finding.last_tamper is None or last > finding.last_tamper:
                finding.last_tamper = last
        elif kind == EventKind.REVERSE_ENERGY:
            finding.reverse_events += n


def _consumption(found: dict[int, MeterFindings], period: Period) -> None:
    ids = list(found)
    length = (period.last - period.first).days + 1
    now = _net_by_meter(ids, period.first, period.last)
    before = _net_by_meter(
        ids, period.first - timedelta(days=length), period.first - timedelta(days=1)
    )
    by_transformer: dict[int, list[Decimal]] = defaultdict(list)
    for meter_id, finding in found.items():
        finding.consumption = now.get(meter_id)
        finding.previous = before.get(meter_id)
        if finding.consumption is not None:
            by_transformer[finding.meter.service_point.parent_id].append(finding.consumption)
    for finding in found.values():
        peers = by_transformer.get(finding.meter.service_point.parent_id, [])
        if len(peers) >= 3:
            finding.peer_median = statistics.median(peers)


def _relays(found: dict[int, MeterFindings], period: Period) -> None:
    statuses = CommStatus.objects.filter(meter_id__in=list(found))
    open_since = {}
    for status in statuses:
        finding = found[status.meter_id]
        finding.unreachable = status.unreachable
        finding.last_success = status.last_success
        if status.relay_state in RELAY_OPEN and status.relay_state_at:
            open_since[status.meter_id] = status.relay_state_at
    for meter_id, since in open_since.items():
        first = max(since.astimezone(local_zone()).date() + timedelta(days=1), period.first)
        if first <= period.last:
            energy = _net_by_meter([meter_id], first, period.last).get(meter_id)
            found[meter_id].open_relay_energy = energy


def _reads(found: dict[int, MeterFindings], start: datetime, end: datetime) -> None:
    rows = (
        MeterReadResult.objects.filter(
            meter_id__in=list(found), run__created_at__gt=start, run__created_at__lte=end
        )
        .exclude(status=ResultStatus.PENDING)
        .values_list("meter_id")
        .annotate(n=Count("*"), ok=Count("pk", filter=Q(status=ResultStatus.OK)))
        .order_by()
    )
    for meter_id, n, ok in rows:
        found[meter_id].reads, found[meter_id].reads_ok = n, ok
    durations = defaultdict(list)
    for meter_id, started, finished in MeterReadResult.objects.filter(
        meter_id__in=list(found),
        run__created_at__gt=start,
        run__created_at__lte=end,
        status=ResultStatus.OK,
        started_at__isnull=False,
        finished_at__isnull=False,
    ).values_list("meter_id", "started_at", "finished_at"):
        durations[meter_id].append((finished - started).total_seconds())
    for meter_id, seconds in durations.items():
        found[meter_id].read_seconds = round(statistics.median(seconds), 1)


def _judge(finding: MeterFindings) -> None:
    flags = []

    def add(key: str, text: str) -> None:
        flags.append(text)
        finding.score += WEIGHTS[key]

    if finding.tamper_events:
        add("tamper", f"{finding.tamper_events} tamper event(s)")
    if finding.reverse_events:
        add("reverse", f"{finding.reverse_events} reverse-energy event(s)")
    change = finding.change_percent
    if change is not None and change < -_setting("AMI_TAMPER_DROP_PERCENT", "50"):
        add("drop", f"consumption {change} % against the previous period")
    if (
        finding.peer_median
        and finding.consumption is not None
        and finding.consumption < finding.peer_median * _setting("AMI_TAMPER_PEER_SHARE", "0.3")
    ):
        add("peers", "far below the meters of its transformer")
    if finding.open_relay_energy and finding.open_relay_energy > 0:
        add("disconnected", "consumption while disconnected")
    if finding.unreachable:
        add("unreachable", "unreachable")
    success = finding.success_percent
    if success is not None and success < 90:
        add("success", f"{success} % of reads succeeded")
    slow = float(_setting("AMI_SLOW_READ_SECONDS", "30"))
    if finding.read_seconds is not None and finding.read_seconds > slow:
        add("slow", f"reads take {finding.read_seconds} s")
    finding.flags = flags


def findings(user, period: Period, meters=None) -> list[MeterFindings]:
    """Every meter's findings, ranked: the highest score first, then by serial."""
    meters = meters_for(user) if meters is None else meters
    found = {m.pk: MeterFindings(m) for m in meters}
    if not found:
        return []
    start, end = day_bounds(period.first, local_zone())[0], period.end
    _events(found, start, end)
    _consumption(found, period)
    _relays(found, period)
    _reads(found, start, end)
    for finding in found.values():
        _judge(finding)
    return sorted(found.values(), key=lambda f: (-f.score, f.meter.serial))


COLUMNS = [
    ("serial", "meter"), ("point", "service_point"), ("score", "score"),
    ("tamper_events", "tamper_events"), ("last_tamper", "last_tamper"),
    ("reverse_events", "reverse_energy_events"), ("consumption", "consumption_wh"),
    ("previous", "previous_period_wh"), ("change", "change_percent"),
    ("peer_median", "transformer_median_wh"), ("open_relay_energy", "energy_while_open_wh"),
    ("unreachable", "unreachable"), ("days_since_read", "days_since_last_read"),
    ("success", "read_success_percent"), ("read_seconds", "median_read_seconds"),
    ("flags", "flags"),
]  # fmt: skip


def rows(results) -> Iterator[dict]:
    for f in results:
        yield {
            "serial": f.meter.serial, "point": f.meter.service_point.code, "score": f.score,
            "tamper_events": f.tamper_events, "last_tamper": f.last_tamper,
            "reverse_events": f.reverse_events, "consumption": f.consumption,
            "previous": f.previous, "change": f.change_percent, "peer_median": f.peer_median,
            "open_relay_energy": f.open_relay_energy, "unreachable": f.unreachable,
            "days_since_read": f.days_since_read, "success": f.success_percent,
            "read_seconds": f.read_seconds, "flags": "; ".join(f.flags),
        }  # fmt: skip


def as_json(row: dict) -> dict:
    """One ranked meter for the API, keyed as the CSV's columns: decimals as exact strings."""
    return {
        heading: str(row[key]) if isinstance(row[key], Decimal) else row[key]
        for key, heading in COLUMNS
    }
