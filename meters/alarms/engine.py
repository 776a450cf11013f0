"""Evaluation: stored events -> alarms, through the rules. The one public entry point is
`evaluate_events(events)`; ingest, the push listener and the derived-event task call it.

For each meter its events are walked in time order. Raising events are grouped per
(rule, kind) and folded into one alarm each (`alarm_actions.raise_alarm`); a restore event
first folds what came before it, then clears the meter's open alarms it ends
(`alarm_actions.clear_by_event`). Evaluating the same events again changes nothing: each
event is counted once per rule (`AlarmOccurrence`), and a restore finds nothing left open.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from itertools import groupby
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from ..choices import RELAY_OPEN, ChannelKind, MeterStatus
from ..models import Channel, CommStatus, GridNode, Meter
from ..obis import normalise
from ..rollup_cache import cached_per_scope
from ..rollup_cache import ttl as rollup_ttl
from ..store import DailyEnergy, EventRecord, RegisterRead, to_decimal
from ..store.interval_energy import energy_codes, energy_series
from . import actions as alarm_actions
from .events import (
    CLEARS,
    CONNECT_CODES,
    DERIVED_CODE_OF,
    DERIVED_LOG,
    DISCONNECT_CODES,
    RESTORE_KINDS,
    EventKind,
    kind_of,
)
from .models import OPEN_STATES, Alarm, AlarmRule

K = EventKind


def rule_matches_meter(rule: AlarmRule, meter: Meter) -> bool:
    """Whether the rule covers this meter: its organisation (and subtree), node and model."""
    if not meter.organisation.path.startswith(rule.organisation.path):
        return False
    if not rule.subtree and meter.organisation_id != rule.organisation_id:
        return False
    return rule.covers(meter)


def active_rules() -> list[AlarmRule]:
    return list(
        AlarmRule.objects.filter(active=True)
        .select_related("organisation", "grid_node")
        .order_by("pk")
    )


def evaluate_events(events: Iterable, *, rules: list[AlarmRule] | None = None) -> list[Alarm]:
    """Raise, fold and clear alarms for `events` (EventRecords); returns the alarms changed.

    Idempotent: the same events evaluated again return [] and change nothing. Runs in one
    transaction; websocket pushes and notification tasks leave after it commits.
    """
    unique = {(e.meter_id, e.log, e.ts, e.code): e for e in events}
    if not unique:
        return []
    ordered = sorted(unique.values(), key=lambda e: (e.meter_id, e.ts, e.log, e.code))
    meters = {
        m.pk: m
        for m in Meter.objects.filter(pk__in={e.meter_id for e in ordered}).select_related(
            "organisation", "service_point", "meter_model"
        )
    }
    rules = active_rules() if rules is None else rules
    changed: dict[int, Alarm] = {}
    with transaction.atomic():
        batched = []  # meters without restore events: their alarms are raised together
        with_open = None  # meters with an open alarm (read once, if a restore needs it)
        for meter_id, group in groupby(ordered, key=lambda e: e.meter_id):
            meter = meters.get(meter_id)
            if meter is None:
                continue
            mine = [r for r in rules if rule_matches_meter(r, meter)]
            kinds = [(e, kind_of(e.code, e.log, meter.meter_model)) for e in group]
            if any(kind in RESTORE_KINDS for _, kind in kinds):
                if with_open is None:
                    with_open = set(
                        Alarm.objects.filter(meter_id__in=meters, state__in=OPEN_STATES)
                        .values_list("meter_id", flat=True)
                        .distinct()
                    )
                opened = meter_id in with_open
                for alarm in _evaluate_meter(meter, kinds, mine, opened):  # in time order
                    changed[alarm.pk] = alarm
                continue
            pending: dict[tuple[int, str], list] = defaultdict(list)
            for event, kind in kinds:
                for rule in mine:
                    if kind in rule.kinds:
                        pending[(rule.pk, kind)].append(event)
            by_pk = {r.pk: r for r in mine}
            batched += [(by_pk[r], meter, kind, evs) for (r, kind), evs in pending.items()]
        for alarm in alarm_actions.raise_alarms(batched):
            changed[alarm.pk] = alarm
    return list(changed.values())


def _evaluate_meter(
    meter: Meter, kinds: list, rules: list[AlarmRule], opened: bool = True
) -> list[Alarm]:
    """One meter's events with restores among them: raise and clear strictly in order.

    `opened`: whether the meter may have an open alarm (False: a restore has nothing to
    clear until this evaluation raises one, and costs no query)."""
    changed: list[Alarm] = []
    pending: dict[tuple[int, str], list] = defaultdict(list)
    by_pk = {r.pk: r for r in rules}

    def flush():
        nonlocal opened
        opened = opened or bool(pending)  # raised, folded, or raised by someone else
        for (rule_pk, kind), evs in sorted(pending.items()):
            alarm = alarm_actions.raise_alarm(by_pk[rule_pk], meter, kind, evs)
            if alarm is not None:
                changed.append(alarm)
        pending.clear()

    for event, kind in kinds:
        if kind in RESTORE_KINDS:
            flush()
            if opened:
                changed.extend(
                    alarm_actions.clear_by_event(meter, CLEARS[kind], event_kind=kind, at=event.ts)
                )
        if kind == EventKind.UNKNOWN:
            continue
        for rule in rules:
            if kind in rule.kinds:
                pending[(rule.pk, kind)].append(event)
    flush()
    return changed


# ------------------------------------------------------------------ derived events
#
# Conditions found in data rather than in a meter's log. Each `derive_*` function stores
# what it finds as EventRecords in the pseudo-log DERIVED_LOG (meters/alarms/events.py) with a
# timestamp that stays the same while the condition lasts (so a periodic task that finds
# the same condition again adds nothing), and returns them; `derive_events` runs them all
# and hands the result to `evaluate_events`. A condition that has ended produces its restore
# event only while an alarm of it is open.

DERIVED_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
VOLTAGE_OBIS = ("1-0:32.7.0*255", "1-0:52.7.0*255", "1-0:72.7.0*255")  # L1, L2, L3
# Import energy in either profile style (per interval, or the register captured cumulatively).
IMPORT_PROFILE_OBIS = tuple(energy_codes("1-0:1.29.0*255"))
IMPORT_REGISTER_OBIS = "1-0:1.8.0*255"


def _setting(name: str, default):
    return getattr(settings, name, default)


def _store(events: list[EventRecord]) -> list[EventRecord]:
    if events:
        EventRecord.objects.bulk_create(events, ignore_conflicts=True, batch_size=1000)
    return events


def _derived(meter_id: int, kind: str, ts: datetime, **data) -> EventRecord:
    return EventRecord(
        meter_id=meter_id, log=DERIVED_LOG, ts=ts, code=DERIVED_CODE_OF[kind], data=data or {}
    )


def _open_meter_ids(kind: str) -> set[int]:
    return set(
        Alarm.objects.filter(kind=kind, state__in=OPEN_STATES).values_list("meter_id", flat=True)
    )


def derive_unreachable(*, failures: int | None = None) -> list[EventRecord]:
    """Meters that failed `failures` reads in a row (CommStatus), and those back again."""
    failures = failures or _setting("AMI_ALARM_UNREACHABLE_FAILURES", 3)
    events = []
    for meter_id, last_success in CommStatus.objects.filter(
        consecutive_failures__gte=failures
    ).values_list("meter_id", "last_success"):
        events.append(_derived(meter_id, K.METER_UNREACHABLE, last_success or DERIVED_EPOCH))
    back = CommStatus.objects.filter(
        meter_id__in=_open_meter_ids(K.METER_UNREACHABLE),
        consecutive_failures=0,
        last_success__isnull=False,
    )
    for meter_id, last_success in back.values_list("meter_id", "last_success"):
        events.append(_derived(meter_id, K.METER_REACHABLE, last_success))
    return _store(events)


def derive_clock_drift(*, limit_s: float | None = None) -> list[EventRecord]:
    """Meters whose clock was last found more than `limit_s` off (and those fixed since)."""
    limit_s = limit_s or _setting("AMI_ALARM_CLOCK_DRIFT_S", 60)
    events = []
    rows = CommStatus.objects.filter(clock_drift_s__isnull=False).values_list(
        "meter_id", "clock_drift_s", "last_success"
    )
    open_ids = _open_meter_ids(K.CLOCK_DRIFT)
    for meter_id, drift, at in rows:
        at = at or DERIVED_EPOCH
        if abs(drift) > limit_s:
            events.append(_derived(meter_id, K.CLOCK_DRIFT, at, drift_s=drift))
        elif meter_id in open_ids:
            events.append(_derived(meter_id, K.CLOCK_DRIFT_OK, at, drift_s=drift))
    return _store(events)


def _local_day_start(day: date) -> datetime:
    zone = ZoneInfo(settings.TIME_ZONE)
    return datetime.combine(day, dtime(0), zone).astimezone(UTC)


def derive_zero_consumption(*, days: int | None = None, now: datetime) -> list[EventRecord]:
    """Active meters at a service point whose import was zero on each of the last `days` days.

    Days are the utility's local days (DailyEnergy), the last complete one being yesterday.
    A day without data is not zero (that is a gap, not a finding).
    """
    days = days or _setting("AMI_ALARM_ZERO_DAYS", 3)
    today = now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    first = today - timedelta(days=days)
    rows = (
        DailyEnergy.objects.filter(
            day__gte=first,
            day__lt=today,
            channel__obis__in=IMPORT_PROFILE_OBIS,
            channel__kind=ChannelKind.PROFILE,
            meter__status=MeterStatus.ACTIVE,
            meter__service_point__isnull=False,
        )
        .values("meter_id")
        .annotate(n=Count("day"), total=Sum("value"))
        .filter(n=days, total=0)
    )
    start = _local_day_start(first)
    return _store([_derived(r["meter_id"], K.ZERO_CONSUMPTION, start, days=days) for r in rows])


def _used_after(meter_id: int, after: datetime, now: datetime, channel):
    """(end, energy) of the first import interval ending after `after` (at most two days
    back) with energy, from the profile, interval or cumulative alike."""
    if channel is None:
        return None
    start = max(after, now - timedelta(days=2))
    for end, value, _flags in energy_series(meter_id, channel, start, now):
        if value is not None and value > 0:
            return end, value
    return None


def _disconnected_since() -> dict[int, datetime]:
    """When each meter whose relay is open was disconnected: its latest relay event if that
    is a disconnection, and the relay as read (CommStatus: open since when it was first seen
    open); a read that found it closed after the event ends it."""
    relay = (
        EventRecord.objects.filter(code__in=DISCONNECT_CODES | CONNECT_CODES)
        .exclude(log=DERIVED_LOG)
        .order_by("meter_id", "-ts")
        .values_list("meter_id", "ts", "code")
    )
    latest: dict[int, tuple[datetime, int]] = {}
    for meter_id, ts, code in relay:
        latest.setdefault(meter_id, (ts, code))
    disconnected = {m: ts for m, (ts, code) in latest.items() if code in DISCONNECT_CODES}
    seen = CommStatus.objects.filter(
        Q(relay_open_since__isnull=False) | Q(meter_id__in=list(disconnected))
    ).values_list("meter_id", "relay_state", "relay_state_at", "relay_open_since")
    for meter_id, state, at, since in seen:
        if state in RELAY_OPEN and since is not None:
            disconnected[meter_id] = min(since, disconnected.get(meter_id, since))
        elif state and state not in RELAY_OPEN and at and at > disconnected.get(meter_id, at):
            disconnected.pop(meter_id, None)  # read closed after the event
    return disconnected


def _register_advanced(meter_id: int, after: datetime, now: datetime, register):
    """(time, Wh) when the import register read after `after` is above the last read at or
    before it (at most two days back): the meter went on counting."""
    if register is None:
        return None
    reads = RegisterRead.objects.filter(meter_id=meter_id, channel=register)
    base = reads.filter(read_at__lte=after).order_by("-read_at").values_list("value").first()
    if base is None:
        base = (
            reads.filter(read_at__gt=after - timedelta(days=2))
            .order_by("read_at")
            .values_list("value")
            .first()
        )
    later = (
        reads.filter(read_at__gt=after, read_at__lte=now, value__gt=base[0] if base else 0)
        .order_by("read_at")
        .values_list("read_at", "value")
        .first()
    )
    if base is None or later is None:
        return None
    return later[0], later[1] - base[0]


def derive_consumption_while_disconnected(*, now: datetime) -> list[EventRecord]:
    """Import recorded after the meter's relay was disconnected (a relay event, or the relay
    read open: `_disconnected_since`).

    First in the load profile of the last two days: an interval ending more than
    `AMI_ALARM_DISCONNECTED_GRACE_S` (default 30 minutes) after the disconnection with import
    above zero, stamped with that interval's end; so it is found on the next read, not the
    next day. Then the import register (1.8.0) read after the grace above its value at the
    disconnection. Otherwise by local days wholly after the disconnection day (DailyEnergy).
    """
    disconnected = _disconnected_since()
    grace = timedelta(seconds=_setting("AMI_ALARM_DISCONNECTED_GRACE_S", 1800))
    import_channels = {
        c.meter_model_id: c
        for c in Channel.objects.filter(
            obis__in=IMPORT_PROFILE_OBIS, kind=ChannelKind.PROFILE, profile_column__isnull=False
        )
    }
    import_registers = {
        c.meter_model_id: c
        for c in Channel.objects.filter(obis=IMPORT_REGISTER_OBIS, kind=ChannelKind.REGISTER)
    }
    models_of = dict(Meter.objects.filter(pk__in=disconnected).values_list("pk", "meter_model_id"))
    zone = ZoneInfo(settings.TIME_ZONE)
    events = []
    for meter_id, ts in disconnected.items():
        model = models_of.get(meter_id)
        used = _used_after(meter_id, ts + grace, now, import_channels.get(model))
        if used is None:
            used = _register_advanced(meter_id, ts + grace, now, import_registers.get(model))
        if used is None:
            day_after = ts.astimezone(zone).date() + timedelta(days=1)
            day = (
                DailyEnergy.objects.filter(
                    meter_id=meter_id,
                    channel__obis__in=IMPORT_PROFILE_OBIS,
                    channel__kind=ChannelKind.PROFILE,
                    day__gte=day_after,
                )
                .filter(value__gt=0)
                .order_by("day")
                .values_list("day", "value")
                .first()
            )
            used = (_local_day_start(day[0]), day[1]) if day else None
        if used:
            events.append(
                _derived(
                    meter_id,
                    K.CONSUMPTION_WHILE_DISCONNECTED,
                    used[0],
                    disconnected_at=ts.isoformat(),
                    value=used[1],
                )
            )
    return _store(events)


def derive_from_findings(findings: Iterable) -> list[EventRecord]:
    """Ingest validation findings (collection/validation.py) that are alarms: registers
    running backwards (and negative consumption or a cumulative profile's reset, the same
    fault seen in a profile)."""
    events = [
        _derived(f.meter_id, K.REGISTER_BACKWARDS, f.start, obis=f.obis, detail=f.detail)
        for f in findings
        if f.kind in ("register_backwards", "negative", "register_reset")
    ]
    return _store(events)


def derive_security_failure(meter_id: int, at: datetime, **data) -> list[EventRecord]:
    """A meter whose association failed a security check (another system title in its
    AARE): one derived event, so alarm rules and the meter's event list see it."""
    return _store([_derived(meter_id, K.SYSTEM_TITLE_MISMATCH, at, **data)])


def derive_voltage_band(*, since: datetime, nominal_v=None, band=None) -> list[EventRecord]:
    """Instantaneous phase voltages (RegisterRead of 32/52/72.7.0) outside nominal +- band."""
    nominal = Decimal(str(nominal_v or _setting("AMI_ALARM_NOMINAL_V", 230)))
    band = Decimal(str(band or _setting("AMI_ALARM_VOLTAGE_BAND", "0.10")))
    low, high = nominal * (1 - band), nominal * (1 + band)
    reads = (
        RegisterRead.objects.filter(read_at__gt=since, channel__obis__in=VOLTAGE_OBIS)
        .select_related("channel")
        .order_by("meter_id", "read_at")
    )
    open_ids = _open_meter_ids(K.VOLTAGE_OUT_OF_BAND)
    events = []
    for read in reads:
        volts = to_decimal(read.value, read.channel.scaler)
        if read.channel.unit.lower() == "kv":
            volts *= 1000
        if not low <= volts <= high:
            events.append(
                _derived(
                    read.meter_id,
                    K.VOLTAGE_OUT_OF_BAND,
                    read.read_at,
                    obis=read.channel.obis,
                    volts=str(volts),
                )
            )
            open_ids.add(read.meter_id)
        elif read.meter_id in open_ids:
            events.append(_derived(read.meter_id, K.VOLTAGE_IN_BAND, read.read_at))
            open_ids.discard(read.meter_id)
    # One reading per meter and time may give two kinds at one ts: keep them distinct.
    return _store(list({(e.meter_id, e.ts, e.code): e for e in events}.values()))


def derive_events(*, now: datetime | None = None, since: datetime | None = None) -> list[Alarm]:
    """Run every periodic derivation and evaluate what they found; returns alarms changed."""
    now = now or timezone.now()
    since = since or now - timedelta(hours=_setting("AMI_ALARM_VOLTAGE_LOOKBACK_H", 1))
    events = [
        *derive_unreachable(),
        *derive_clock_drift(),
        *derive_zero_consumption(now=now),
        *derive_consumption_while_disconnected(now=now),
        *derive_voltage_band(since=since),
    ]
    return evaluate_events(events)


# ------------------------------------------------------------------ outages


def _meters_off(user) -> tuple[dict, dict]:
    """({"transformer"|"feeder": {node id: {meter ids off}}}, {node id: earliest failure})."""
    rows = (
        Alarm.objects.restrict(user, "view")
        .filter(kind=K.POWER_FAILURE, state__in=OPEN_STATES, service_point__isnull=False)
        .values_list("meter_id", "service_point__path", "first_event_at")
    )
    # region/substation/feeder/transformer/service point: fixed depth, so the path says it.
    off: dict[str, dict[int, set]] = {"transformer": defaultdict(set), "feeder": defaultdict(set)}
    since: dict[int, datetime] = {}
    for meter_id, path, first in rows:
        parts = [int(p) for p in path.strip("/").split("/")]
        if len(parts) < 5:
            continue
        for level, node_id in (("feeder", parts[2]), ("transformer", parts[3])):
            off[level][node_id].add(meter_id)
            since[node_id] = min(since.get(node_id, first), first)
    return off, since


def meters_off(user) -> int:
    """Meters off now in the user's scope (`outage_summary`'s "meters_off" alone: the home's
    figure, without the counts of meters below each node)."""
    off, _ = _meters_off(user)
    return len({m for ids in off["transformer"].values() for m in ids})


def meters_below(user) -> dict:
    """{"transformer"|"feeder": {node id: meters below it}} over the user's whole scope, one
    grouped pass; shared per scope for the dashboard roll-ups' time (a grid's meter counts
    change with the registry, not with events: `DASHBOARD_ROLLUP_SECONDS`, 15 s)."""

    def compute() -> dict:
        totals: dict[str, dict] = {"transformer": {}, "feeder": {}}
        pairs = (
            Meter.objects.restrict(user, "view")
            .filter(service_point__isnull=False)
            .values_list("service_point__parent_id", "service_point__parent__parent_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for transformer, feeder, n in pairs:
            for level, node_id in (("transformer", transformer), ("feeder", feeder)):
                if node_id is not None:
                    totals[level][node_id] = totals[level].get(node_id, 0) + n
        return totals

    return cached_per_scope(user, "meters-below", compute, rollup_ttl())


def outage_summary(user) -> dict:
    """Meters off per transformer and feeder in the user's scope.

    A meter is off when it has an open power-failure alarm (a restore event clears it, so
    this is "its latest power event is a failure"). For each transformer and feeder with at
    least one meter off: meters off, meters below it, and since when (the earliest failure):
    "transformer T-114: 37 of 40 meters off since 10:42". Meters off are counted now; meters
    below each node as `meters_below` (shared for the roll-ups' seconds).
    """
    off, since = _meters_off(user)
    totals = meters_below(user) if off["transformer"] or off["feeder"] else {}
    nodes = GridNode.objects.in_bulk([*off["transformer"], *off["feeder"]])
    result = {"meters_off": len({m for ids in off["transformer"].values() for m in ids})}
    for level in ("transformer", "feeder"):
        entries = [
            {
                "id": node_id,
                "code": nodes[node_id].code,
                "name": nodes[node_id].name,
                "off": len(ids),
                "total": totals[level].get(node_id, len(ids)),
                "since": since[node_id],
            }
            for node_id, ids in off[level].items()
            if node_id in nodes
        ]
        entries.sort(key=lambda e: (-e["off"], e["code"]))
        result[f"{level}s"] = entries
    return result


def evaluate_meter_events(batch: Iterable) -> list[Alarm]:
    """`evaluate_events` for the batch `collection.ingest.ingest_events` takes.

    `batch` is [(meter or meter id, [MeterEvent(timestamp, code, log, data)]), ...]; call it
    after `ingest_events(batch)` (stored or not, the keys are the same).
    """

    def obis(text: str) -> str:
        try:
            return normalise(text)
        except ValueError:
            return text

    records = [
        EventRecord(
            meter_id=meter if isinstance(meter, int) else meter.pk,
            log=obis(e.log),
            ts=e.timestamp.astimezone(UTC),
            code=int(e.code),
        )
        for meter, meter_events in batch
        for e in meter_events
    ]
    return evaluate_events(records)
