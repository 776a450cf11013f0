"""From meters' outcomes to the store: profiles, registers and events through ingest, in bulk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Max
from django.utils import timezone

from meters import obis as obis_codes
from meters.alarms import engine as alarm_engine
from meters.alarms.events import describe
from meters.choices import ChannelKind
from meters.models import Channel, Meter
from meters.store import StoredInterval

from .ingest import IngestResult, ingest_events, ingest_profiles, ingest_registers
from .protocols.base import RegisterValue
from .reader import MeterOutcome
from .relay import record_relay_states, relay_events, state_of_control


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def summary(outcome: MeterOutcome) -> dict:
    """A JSON-able picture of what the meter said (shown for on-demand reads)."""
    data: dict = {}
    if outcome.clock is not None:
        data["clock"] = {
            "meter_time": outcome.clock.meter_time.isoformat()
            if outcome.clock.meter_time
            else None,
            "system_time": outcome.clock.system_time.isoformat(),
            "drift_s": outcome.clock.drift_seconds,
            "set": outcome.clock_set,
        }
    if outcome.registers:
        data["registers"] = [
            {
                "obis": r.obis,
                "value": _num(r.value),
                "unit": r.unit,
                "capture_time": r.capture_time.isoformat() if r.capture_time else None,
            }
            for r in outcome.registers
        ]
    if outcome.profiles:
        data["profiles"] = [
            {"profile": p.profile, "channels": [c.obis for c in p.channels], "rows": len(p.rows)}
            for p in outcome.profiles
        ]
    if outcome.events:
        data["events"] = [
            {
                "timestamp": e.timestamp.isoformat(),
                "code": e.code,
                "log": e.log,
                "name": describe(e.code, e.log).name,
            }
            for e in outcome.events[:200]
        ]
    if outcome.instantaneous is not None:
        inst = outcome.instantaneous
        data["instantaneous"] = {
            "read_at": inst.read_at.isoformat(),
            "voltages": [_num(v) for v in inst.voltages],
            "currents": [_num(v) for v in inst.currents],
            "angles": [_num(v) for v in inst.angles],
            "frequency": _num(inst.frequency),
            "active_power": _num(inst.active_power),
        }
    if outcome.relay is not None:
        data["relay"] = {
            "connected": outcome.relay.connected,
            "control_state": outcome.relay.control_state,
        }
    return data


def values_in(outcome: MeterOutcome) -> int:
    """How many single values the meter delivered (profile cells, registers, events and
    instantaneous values: each phase's voltage, current and angle, frequency, power)."""
    cells = sum(len(p.rows) * len(p.channels) for p in outcome.profiles)
    registers = sum(1 for r in outcome.registers if r.value is not None)
    instantaneous = 0
    if outcome.instantaneous is not None:
        inst = outcome.instantaneous
        present = [*inst.voltages, *inst.currents, *inst.angles, inst.frequency, inst.active_power]
        instantaneous = sum(1 for v in present if v is not None)
    return cells + registers + len(outcome.events) + instantaneous


def store_outcomes(outcomes: list[MeterOutcome]) -> IngestResult:
    """Store what the successful meters gave, in three bulk ingests (one transaction: caller's),
    and evaluate alarm rules on the events and on validation findings.

    Profiles go first so the register check (profile sum vs register delta) sees them.
    """
    good = [o for o in outcomes if o.ok]
    result = IngestResult()
    profiles = [(o.meter_id, block) for o in good for block in o.profiles if block.rows]
    if profiles:
        result += ingest_profiles(profiles)
    registers = [(o.meter_id, _read_at(o), o.registers) for o in good if o.registers]
    registers += closure_reads(good)
    if registers:
        result += ingest_registers(registers)
    events = [(o.meter_id, o.events) for o in good if o.events]
    if events:
        result += ingest_events(events)
        alarm_engine.evaluate_meter_events(events)
    record_relay_states(_relay_seen(good, events))
    # Validation findings that are alarms (a register running backwards, ...).
    derived = alarm_engine.derive_from_findings(result.findings)
    if derived:
        alarm_engine.evaluate_events(derived)
    return result


# OBIS value group C of the billing-period profiles (0-0:98.1.0 monthly, 0-0:98.2.0 daily):
# each row is the registers as the meter closed them at the end of a billing period.
BILLING_PROFILE_C = 98


def closure_reads(good: list[MeterOutcome]) -> list[tuple[int, datetime, list[RegisterValue]]]:
    """Billing closures as register reads at their closure time: each row of a billing
    profile gives the registers of the meter's model it captured, read at the row's time
    (so billing finds the meter's own closure at a period's bound). Values the meter marked
    invalid are None in the row and left out."""
    blocks = [
        (o.meter_id, block)
        for o in good
        for block in o.profiles
        if block.rows and obis_codes.parse(block.profile).c == BILLING_PROFILE_C
    ]
    if not blocks:
        return []
    models = dict(
        Meter.objects.filter(pk__in={m for m, _ in blocks}).values_list("pk", "meter_model_id")
    )
    registers = set(
        Channel.objects.filter(
            meter_model_id__in=set(models.values()), kind=ChannelKind.REGISTER
        ).values_list("meter_model_id", "obis")
    )
    reads = []
    for meter_id, block in blocks:
        model = models.get(meter_id)
        columns = [
            (i, channel)
            for i, channel in enumerate(block.channels)
            if (model, obis_codes.normalise(channel.obis)) in registers
        ]
        for row in block.rows:
            values = [
                RegisterValue(obis=channel.obis, value=row.values[i], unit=channel.unit)
                for i, channel in columns
                if row.values[i] is not None
            ]
            if values:
                reads.append((meter_id, row.timestamp, values))
    return reads


def _relay_seen(good: list[MeterOutcome], events: list) -> dict[int, tuple[str, datetime]]:
    """Per meter, the newest relay state: its relay events, or the relay read (now)."""
    seen = relay_events(events)
    now = timezone.now()
    for outcome in good:
        state = state_of_control(outcome.relay.control_state) if outcome.relay else None
        if state is not None and (outcome.meter_id not in seen or seen[outcome.meter_id][1] < now):
            seen[outcome.meter_id] = (state, now)
    return seen


def _read_at(outcome: MeterOutcome) -> datetime:
    """When the registers were read: when the copy was taken when they come from a copy (a
    concentrator's own data), else the meter's own clock (the values are as of it)."""
    if outcome.registers_at is not None:
        return outcome.registers_at.replace(microsecond=0)
    clock = outcome.clock
    if clock is not None and clock.meter_time is not None:
        return clock.meter_time.replace(microsecond=0)
    return timezone.now().replace(microsecond=0)


def profile_since(
    meter_ids: list[int], model_ids: dict[int, int], default: datetime, horizon: timedelta
) -> dict[int, dict[str, datetime]]:
    """Gap detection: per meter and profile, where the store stops (bounded by the horizon).

    A meter unreachable for three days is read from its last stored interval on its next
    good read; one with nothing stored within the horizon -- never read yet, or silent for
    longer -- starts at the horizon (`horizon` before `default`), so a first read brings
    the history the job's `backfill_days` promise, not just the last day.
    """
    earliest = default - horizon
    groups: dict[tuple[int, int], str] = {}  # (model, group) -> profile OBIS
    for model_id, group, profile in Channel.objects.filter(
        meter_model_id__in=set(model_ids.values()), kind=ChannelKind.PROFILE
    ).values_list("meter_model_id", "profile_group", "profile_obis"):
        groups[(model_id, group)] = profile
    last = (
        StoredInterval.objects.filter(
            meter_id__in=meter_ids, ts__gte=earliest, day__gte=earliest.astimezone(UTC).date()
        )
        .values_list("meter_id", "group")
        .annotate(last=Max("ts"))
    )
    since: dict[int, dict[str, datetime]] = {}
    for meter_id, group, last_ts in last:
        profile = groups.get((model_ids[meter_id], group))
        if profile is None:
            continue
        current = since.setdefault(meter_id, {}).get(profile)
        # A profile spread over several groups restarts where its least complete group stops.
        since[meter_id][profile] = last_ts if current is None else min(current, last_ts)
    profiles_of_model: dict[int, set[str]] = {}
    for (model_id, _group), profile in groups.items():
        profiles_of_model.setdefault(model_id, set()).add(profile)
    for meter_id in meter_ids:
        for profile in profiles_of_model.get(model_ids[meter_id], ()):
            since.setdefault(meter_id, {}).setdefault(profile, earliest)
    return since
