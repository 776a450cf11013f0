"""Validation and estimation on ingest: quality flags on values plus a list of findings.

Ingest hands each meter's profile data to `validate_series` as columns of stored integers
(units of `10**scaler`) with one flag list per column. Checks set flags in place and return
`Finding`s (the caller stores them or turns them into alarms):

* gaps between consecutive intervals; gaps of up to `max_estimated_gap` intervals are filled
  by linear interpolation and flagged ESTIMATED (never over a measured value: the store's
  merge rule keeps measured data), longer ones are reported only;
* spikes (an interval far above the median of the channel's non-zero values in the block);
* negative consumption on energy channels;
* cumulative channels (registers captured by the profile) are checked on their derived
  interval energy (`meters.store.interval_energy.derive`, from the last stored capture before the
  block): a register running backwards is a wrap (finding `register_wrap`, energy kept) or a
  reset (finding `register_reset`, the capture flagged NEGATIVE); spikes are looked for in
  the differences, never in the running total;
* registers that run backwards, and the sum of a profile channel between two register reads
  against the register's difference (`validate_register_reads`, `check_profile_sums`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection

from meters.models import Channel
from meters.store import Quality, RegisterRead, interval_energy

ENERGY_UNITS = frozenset({"wh", "kwh", "mwh", "varh", "kvarh", "mvarh", "vah", "kvah"})

# DLMS/IDIS AMR profile status bits -> our flags.
_STATUS_POWER_DOWN = 0x80
_STATUS_CLOCK = 0x20 | 0x02  # clock adjusted, clock invalid
_STATUS_INVALID = 0x04 | 0x01  # data not valid, critical error


def status_flags(status: int | None) -> int:
    """Flags implied by a profile row's status byte."""
    if not status:
        return 0
    flags = 0
    if status & _STATUS_POWER_DOWN:
        flags |= Quality.POWER_DOWN
    if status & _STATUS_CLOCK:
        flags |= Quality.CLOCK_SUSPECT
    if status & _STATUS_INVALID:
        flags |= Quality.INVALID
    return flags


@dataclass(frozen=True, slots=True)
class Finding:
    """Something validation noticed: an event for later alarms."""

    kind: str  # gap, spike, negative, register_backwards, profile_register_mismatch, ...
    meter_id: int
    obis: str
    start: datetime
    end: datetime | None = None
    detail: str = ""
    count: int = 1


@dataclass(frozen=True, slots=True)
class Rules:
    """Thresholds of validation and estimation (stored-integer units where it matters)."""

    max_estimated_gap: int = 4  # intervals filled by linear estimation
    spike_factor: int = 20  # a value above factor x median of the block is a spike ...
    spike_floor: int = 100  # ... and above this many units (ignores near-zero channels)
    spike_min_values: int = 8  # blocks smaller than this are not checked for spikes
    mismatch_tolerance: int = 0  # units allowed between profile sum and register delta
    profile_period_seconds: int = 900  # interval length assumed by the profile/register check


DEFAULT_RULES = Rules()


@dataclass(slots=True)
class Column:
    """One channel of one meter's series: integers (None = missing) and flags, by row."""

    obis: str
    unit: str
    values: list
    flags: list
    cumulative: bool = False  # register values captured by the profile
    previous: tuple | None = None  # cumulative: last stored capture before the block

    @property
    def is_energy(self) -> bool:
        return (self.unit or "").lower() in ENERGY_UNITS


@dataclass(slots=True)
class Series:
    """One meter's rows of one store group, ordered by interval end."""

    meter_id: int
    timestamps: list
    columns: dict[int, Column] = field(default_factory=dict)
    period: timedelta | None = None
    group: int = 0


def _period(timestamps: list, declared: int | None) -> timedelta | None:
    if declared:
        return timedelta(seconds=declared)
    diffs = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False) if b > a]
    return min(diffs) if diffs else None


def validate_series(
    series: Series, rules: Rules = DEFAULT_RULES, period_seconds: int | None = None
) -> tuple[list[Finding], int, int]:
    """Check and estimate one series in place; returns (findings, flagged, estimated)."""
    findings: list[Finding] = []
    flagged = 0
    series.period = _period(series.timestamps, period_seconds)
    for column in series.columns.values():
        flagged += _check_column(series, column, rules, findings)
    estimated = _fill_gaps(series, rules, findings) if series.period else 0
    return findings, flagged, estimated


def _check_column(series: Series, column: Column, rules: Rules, findings: list) -> int:
    values, flags = column.values, column.flags
    flagged = 0
    if column.cumulative:
        values, flagged = _derived_for_checks(series, column, findings)
    present = [v for v in values if v is not None]
    if not present:
        return flagged
    if column.is_energy and min(present) < 0:
        for i, v in enumerate(values):
            if v is not None and v < 0:
                flags[i] |= Quality.NEGATIVE
                flagged += 1
                findings.append(
                    Finding(
                        "negative",
                        series.meter_id,
                        column.obis,
                        series.timestamps[i],
                        detail=f"value {v}",
                    )
                )
    # The median of the non-zero values: an export (solar) or night-time channel is zero for
    # half the day, and a zero median would make every sunny interval a "spike".
    active = [v for v in present if v > 0]
    if len(active) >= rules.spike_min_values:
        ordered = sorted(active)
        median = ordered[len(ordered) // 2]
        limit = max(rules.spike_factor * max(median, 0), rules.spike_floor)
        if ordered[-1] > limit:
            for i, v in enumerate(values):
                if v is not None and v > limit:
                    flags[i] |= Quality.SPIKE
                    flagged += 1
                    findings.append(
                        Finding(
                            "spike",
                            series.meter_id,
                            column.obis,
                            series.timestamps[i],
                            detail=f"value {v} > {limit} (median {median})",
                        )
                    )
    return flagged


def _derived_for_checks(series: Series, column: Column, findings: list) -> tuple[list, int]:
    """Interval energy of a cumulative column, with its wraps and resets reported."""
    captures = list(zip(series.timestamps, column.values, column.flags, strict=True))
    derived = interval_energy.derive(captures, column.previous)
    flagged = 0
    last = column.previous[1] if column.previous else None
    for i, (ts, _energy, flags) in enumerate(derived):
        value = column.values[i]
        if value is None:
            continue
        if last is not None and value < last:
            if flags & Quality.NEGATIVE:
                column.flags[i] |= Quality.NEGATIVE
                flagged += 1
                kind = "register_reset"
            else:
                kind = "register_wrap"
            findings.append(
                Finding(kind, series.meter_id, column.obis, ts, detail=f"{last} -> {value}")
            )
        last = value
    return [e for _, e, _ in derived], flagged


def _fill_gaps(series: Series, rules: Rules, findings: list) -> int:
    period = series.period
    ts = series.timestamps
    gaps = []  # (index of the row before the gap, missing intervals)
    for i in range(len(ts) - 1):
        step = ts[i + 1] - ts[i]
        if step > period:
            gaps.append((i, int(step / period) - 1))
    if not gaps:
        return 0
    estimated = 0
    obis = ",".join(c.obis for c in series.columns.values())
    # Walk backwards so that inserting rows keeps earlier indexes valid.
    for i, missing in reversed(gaps):
        start, end = ts[i] + period, ts[i + 1] - period
        if missing < 1:
            continue
        if missing > rules.max_estimated_gap:
            findings.append(Finding("gap", series.meter_id, obis, start, end, count=missing))
            continue
        findings.append(
            Finding("gap", series.meter_id, obis, start, end, detail="estimated", count=missing)
        )
        new_ts = [ts[i] + period * k for k in range(1, missing + 1)]
        for column in series.columns.values():
            a, b = column.values[i], column.values[i + 1]
            if a is None or b is None:
                new_values = [None] * missing
                new_flags = [Quality.MISSING] * missing
            else:
                new_values = [a + round((b - a) * k / (missing + 1)) for k in range(1, missing + 1)]
                new_flags = [Quality.ESTIMATED] * missing
                estimated += missing
            column.values[i + 1 : i + 1] = new_values
            column.flags[i + 1 : i + 1] = new_flags
        ts[i + 1 : i + 1] = new_ts
    return estimated


@dataclass(frozen=True, slots=True)
class RegisterPoint:
    """A cumulative register value at a time (stored integer in 10**scaler units)."""

    meter_id: int
    channel_id: int
    obis: str
    read_at: datetime
    value: int
    stored: bool  # True: already in the store before this batch


def check_registers(points: list[RegisterPoint]) -> tuple[list[Finding], set[tuple]]:
    """Registers that run backwards: findings and the keys of the offending new reads.

    `points` holds, per (meter, channel), the last stored read before the batch and the
    batch's reads, in any order.
    """
    findings, bad = [], set()
    by_key: dict[tuple, list[RegisterPoint]] = {}
    for p in points:
        by_key.setdefault((p.meter_id, p.channel_id), []).append(p)
    for reads in by_key.values():
        reads.sort(key=lambda p: p.read_at)
        for prev, cur in zip(reads, reads[1:], strict=False):
            if cur.value < prev.value and not cur.stored:
                bad.add((cur.meter_id, cur.channel_id, cur.read_at))
                findings.append(
                    Finding(
                        "register_backwards",
                        cur.meter_id,
                        cur.obis,
                        prev.read_at,
                        cur.read_at,
                        detail=f"{prev.value} -> {cur.value}",
                    )
                )
    return findings, bad


# ------------------------------------------------------------------ registers (stored data)

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def is_cumulative(channel: Channel) -> bool:
    """An energy register counting up (`Channel.accumulation`, an energy unit)."""
    return channel.is_cumulative and (channel.unit or "").lower() in ENERGY_UNITS


def _previous_reads(reads: dict) -> dict[tuple, tuple[datetime, int]]:
    """The last stored read before the batch per (meter, channel) of the batch."""
    keys = {(m, c) for m, c, _ in reads}
    before = min(t for _, _, t in reads)
    meter_ids = {m for m, _ in keys}
    found: dict[tuple, tuple[datetime, int]] = {}
    qs = (
        RegisterRead.objects.filter(meter_id__in=meter_ids, read_at__lt=before)
        .order_by("meter_id", "channel_id", "-read_at")
        .values_list("meter_id", "channel_id", "read_at", "value")
    )
    if connection.vendor == "postgresql":
        qs = qs.distinct("meter_id", "channel_id")
        rows = list(qs)
    else:
        rows = []
        seen = set()
        for row in qs.iterator():
            if (row[0], row[1]) not in seen:
                seen.add((row[0], row[1]))
                rows.append(row)
    for meter_id, channel_id, read_at, value in rows:
        if (meter_id, channel_id) in keys:
            found[(meter_id, channel_id)] = (read_at, value)
    return found


def validate_register_reads(reads: dict, by_key: dict) -> tuple[list[Finding], int, dict]:
    """Flag cumulative registers running backwards (in `reads`, in place).

    `reads`: (meter, channel, read_at) -> [stored value, capture time, flags];
    `by_key`: the same keys -> Channel. Returns (findings, flagged, the stored or batch read
    before each cumulative read: key -> (read_at, value)).
    """
    cumulative = {k for k, ch in by_key.items() if is_cumulative(ch)}
    if not cumulative:
        return [], 0, {}
    previous = _previous_reads({k: reads[k] for k in cumulative})
    points = []
    for key in cumulative:
        m, c, t = key
        points.append(RegisterPoint(m, c, by_key[key].obis, t, reads[key][0], False))
    for (m, c), (t, v) in previous.items():
        points.append(RegisterPoint(m, c, "", t, v, True))
    findings, bad = check_registers(points)
    for key in bad:
        reads[key][2] |= Quality.NEGATIVE
    by_register: dict[tuple[int, int], list[RegisterPoint]] = {}
    for p in points:
        by_register.setdefault((p.meter_id, p.channel_id), []).append(p)
    reads_prev = {}
    for key in cumulative:
        m, c, t = key
        prior = [p for p in by_register[(m, c)] if p.read_at < t]
        if prior:
            last = max(prior, key=lambda p: p.read_at)
            reads_prev[key] = (last.read_at, last.value)
    return findings, len(bad), reads_prev


def profile_channel_for(register: Channel) -> Channel | None:
    """The profile column counting the same energy: C.29.E per interval, or the register
    itself captured by the profile (cumulative, IDIS style)."""
    return interval_energy.energy_channels([register.meter_model_id], register.obis).first()


def check_profile_sums(reads: dict, by_key: dict, previous: dict, rules: Rules) -> list[Finding]:
    """Sum of the profile between two reads of an energy register against their difference."""
    findings = []
    period = timedelta(seconds=rules.profile_period_seconds)
    profile_of: dict[int, Channel | None] = {}
    for key, (prev_at, prev_value) in previous.items():
        meter_id, channel_id, read_at = key
        register = by_key[key]
        if channel_id not in profile_of:
            profile_of[channel_id] = profile_channel_for(register)
        profile = profile_of[channel_id]
        if profile is None or reads[key][2] & Quality.NEGATIVE:
            continue
        energy = interval_energy.energy_series(meter_id, profile, prev_at, read_at)
        values = [v for _, v, f in energy if v is not None and not f & Quality.MISSING]
        expected = int((read_at - _EPOCH) / period) - int((prev_at - _EPOCH) / period)
        if len(values) != expected or expected == 0:
            continue  # profile incomplete: the gap is reported by profile validation
        exp = min(profile.scaler, register.scaler)
        total = sum(values) * 10 ** (profile.scaler - exp)
        delta = (reads[key][0] - prev_value) * 10 ** (register.scaler - exp)
        if abs(total - delta) > rules.mismatch_tolerance:
            findings.append(
                Finding(
                    "profile_register_mismatch",
                    meter_id,
                    register.obis,
                    prev_at,
                    read_at,
                    detail=f"profile sum {total} vs register delta {delta} (10^{exp})",
                )
            )
    return findings
