"""Ingest into the measurement store: idempotency, merge ranks, unmapped values, DST, rollups.

Every test runs on SQLite and on PostgreSQL (DATABASE_URL=postgres://...): same results.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from collection.ingest import ingest_events, ingest_profiles, ingest_registers
from collection.protocols.base import Channel as Col
from collection.protocols.base import MeterEvent, ProfileBlock, ProfileRow, RegisterValue
from meters.models import Channel
from meters.store import (
    DailyEnergy,
    EventRecord,
    IntervalReading,
    Quality,
    RegisterRead,
    UnmappedValue,
)
from meters.store.days import day_bounds
from meters.store.query import raw_series
from meters.store.rollups import feeder_daily_energy

PROFILE = "1-0:99.1.0*255"
IMPORT, EXPORT = "1-0:1.29.0*255", "1-0:2.29.0*255"
QH = timedelta(minutes=15)


def channel_series(meter_id, channel, start, end):
    """(ts, value, flags) of a channel as the store's raw series reads it."""
    return [(p.ts, p.value, p.flags) for p in raw_series(meter_id, channel, start, end)]


T0 = datetime(2026, 6, 1, tzinfo=UTC)


def block(start, values, channels=(IMPORT, EXPORT), status=None, unit="Wh"):
    """A profile block: values[i] is the tuple of row i (interval ends start + (i+1)*15 min)."""
    rows = tuple(
        ProfileRow(
            start + QH * (i + 1),
            tuple(None if v is None else Decimal(v) for v in vs),
            (status or {}).get(i),
        )
        for i, vs in enumerate(values)
    )
    return ProfileBlock(PROFILE, tuple(Col(c, unit) for c in channels), rows, 900)


def day_values(n=96, base=100):
    return [(base + i % 7, i % 3) for i in range(n)]


def snapshot():
    return sorted(
        IntervalReading.objects.values_list("meter_id", "group", "ts", "quality", "v0", "v1")
    )


@pytest.fixture
def meters(world):
    return world.grid_a.meters + world.grid_b.meters


@pytest.fixture
def import_channel(world):
    return Channel.objects.get(meter_model=world.meter_model, obis=IMPORT)


def test_profile_channels_get_store_columns(world):
    chans = Channel.objects.filter(meter_model=world.meter_model, kind="profile")
    assert sorted(chans.values_list("profile_group", "profile_column")) == [(0, 0), (0, 1)]
    extra = Channel.objects.create(
        meter_model=world.meter_model,
        obis="1-0:99.2.0*255",
        name="Daily",
        kind="profile",
        profile_obis="1-0:99.2.0*255",
    )
    assert (extra.profile_group, extra.profile_column) == (1, 0)  # another profile, new group


def test_ingest_twice_changes_nothing(meters, import_channel):
    batch = [(m, block(T0, day_values())) for m in meters]
    first = ingest_profiles(batch)
    assert (first.inserted, first.updated, first.duplicates) == (96 * 4, 0, 0)
    assert first.values == 96 * 4 * 2
    before = snapshot()
    again = ingest_profiles(batch)
    assert (again.inserted, again.updated, again.duplicates) == (0, 0, 96 * 4)
    assert snapshot() == before
    series = channel_series(meters[0].pk, import_channel, T0, T0 + timedelta(days=1))
    assert [v for _, v, _ in series] == [Decimal(100 + i % 7) for i in range(96)]
    assert all(flags == 0 for _, _, flags in series)


def test_measured_replaces_estimated_never_the_reverse(meters, import_channel):
    meter = meters[0]
    values = day_values(8)
    gap = values[:3] + values[5:]  # intervals 4 and 5 missing: estimated (gap <= 4)
    rows = list(block(T0, values).rows)
    short = ProfileBlock(PROFILE, block(T0, values).channels, tuple(rows[:3] + rows[5:]), 900)
    assert len(short.rows) == len(gap)
    result = ingest_profiles([(meter, short)])
    assert result.estimated == 4  # 2 intervals x 2 channels
    assert any(f.kind == "gap" and f.count == 2 for f in result.findings)
    series = channel_series(meter.pk, import_channel, T0, T0 + QH * 8)
    assert [bool(q & Quality.ESTIMATED) for _, _, q in series] == [0, 0, 0, 1, 1, 0, 0, 0]

    measured = ingest_profiles([(meter, block(T0, values))])
    assert (measured.inserted, measured.updated, measured.duplicates) == (0, 2, 6)
    series = channel_series(meter.pk, import_channel, T0, T0 + QH * 8)
    assert [v for _, v, _ in series] == [Decimal(v[0]) for v in values]
    assert not any(q & Quality.ESTIMATED for _, _, q in series)

    # An estimate arriving later (e.g. from another job) never overwrites measured data.
    again = ingest_profiles([(meter, short)])
    assert (again.inserted, again.updated) == (0, 0)
    assert [v for _, v, _ in channel_series(meter.pk, import_channel, T0, T0 + QH * 8)] == [
        Decimal(v[0]) for v in values
    ]


def test_measured_fills_a_missing_value(meters, import_channel):
    meter = meters[0]
    values = day_values(4)
    holed = [values[0], (None, values[1][1]), values[2], values[3]]
    ingest_profiles([(meter, block(T0, holed))])
    series = channel_series(meter.pk, import_channel, T0, T0 + QH * 4)
    assert series[1][1] is None and series[1][2] & Quality.MISSING
    result = ingest_profiles([(meter, block(T0, values))])
    assert result.updated == 1
    series = channel_series(meter.pk, import_channel, T0, T0 + QH * 4)
    assert series[1][1] == Decimal(values[1][0]) and series[1][2] == 0


def test_unknown_channel_and_inexact_values_are_kept(meters):
    meter = meters[0]
    odd = block(T0, [(5, 7, 9)], channels=(IMPORT, EXPORT, "1-0:32.7.0*255"))
    result = ingest_profiles([(meter, odd)])
    assert result.unmapped == 1
    kept = UnmappedValue.objects.get()
    assert (kept.obis, kept.value, kept.reason) == (
        "1-0:32.7.0*255",
        "9",
        "no channel in the meter model",
    )
    inexact = block(T0 + QH, [("1.5", 2)])
    result = ingest_profiles([(meter, inexact)])
    assert result.unmapped == 1
    assert UnmappedValue.objects.filter(reason__startswith="not exact").get().value == "1.5"
    # Again: kept once, the store unchanged.
    before = (snapshot(), UnmappedValue.objects.count())
    ingest_profiles([(meter, odd), (meter, inexact)])
    assert (snapshot(), UnmappedValue.objects.count()) == before


def test_kwh_is_converted_exactly(meters, import_channel):
    meter = meters[0]
    ingest_profiles([(meter, block(T0, [("0.123", "0.001")], unit="kWh"))])
    assert channel_series(meter.pk, import_channel, T0, T0 + QH)[0][1] == Decimal(123)


def test_validation_flags_spikes_negatives_and_status(meters, import_channel):
    meter = meters[0]
    values = day_values(24)
    values[10] = (100000, 0)
    values[12] = (-5, 0)
    result = ingest_profiles([(meter, block(T0, values, status={3: 0x80, 4: 0x02}))])
    kinds = sorted(f.kind for f in result.findings)
    assert kinds == ["negative", "spike"]
    assert result.flagged == 2
    flags = [q for _, _, q in channel_series(meter.pk, import_channel, T0, T0 + QH * 24)]
    assert flags[10] & Quality.SPIKE and flags[12] & Quality.NEGATIVE
    assert flags[3] & Quality.POWER_DOWN and flags[4] & Quality.CLOCK_SUSPECT
    assert flags[0] == 0


def test_long_gap_is_reported_not_estimated(meters):
    meter = meters[0]
    full = block(T0, day_values(20))
    rows = full.rows[:5] + full.rows[15:]
    result = ingest_profiles([(meter, ProfileBlock(PROFILE, full.channels, rows, 900))])
    assert result.estimated == 0
    (gap,) = [f for f in result.findings if f.kind == "gap"]
    assert gap.count == 10 and gap.start == T0 + QH * 6


def test_registers_idempotent_with_capture_time(meters, world):
    meter = meters[0]
    md = Channel.objects.create(
        meter_model=world.meter_model, obis="1-0:1.6.0*255", name="MD", unit="W", kind="register"
    )
    read_at = T0 + timedelta(hours=1)
    values = [
        RegisterValue("1-0:1.8.0*255", Decimal(12345), "Wh"),
        RegisterValue("1-0:1.6.0*255", Decimal(880), "W", capture_time=T0 + QH * 2),
        RegisterValue("1-0:9.9.9*255", Decimal("1.5"), "V"),
    ]
    result = ingest_registers([(meter, read_at, values)])
    assert (result.inserted, result.unmapped) == (2, 1)
    again = ingest_registers([(meter, read_at, values)])
    assert (again.inserted, again.updated, again.duplicates) == (0, 0, 2)
    stored = RegisterRead.objects.get(channel=md)
    assert (stored.value, stored.capture_time) == (880, T0 + QH * 2)


def test_register_running_backwards_is_flagged(meters):
    meter = meters[0]
    reg = "1-0:1.8.0*255"
    ingest_registers([(meter, T0, [RegisterValue(reg, Decimal(5000), "Wh")])])
    result = ingest_registers([(meter, T0 + QH, [RegisterValue(reg, Decimal(4000), "Wh")])])
    assert [f.kind for f in result.findings] == ["register_backwards"]
    assert RegisterRead.objects.get(read_at=T0 + QH).quality & Quality.NEGATIVE


def test_profile_sum_against_register_delta(meters):
    reg = "1-0:1.8.0*255"
    values = day_values(8)
    total = sum(v[0] for v in values)
    for meter, error in ((meters[0], 0), (meters[1], 7)):
        ingest_profiles([(meter, block(T0, values))])
        ingest_registers([(meter, T0, [RegisterValue(reg, Decimal(1000), "Wh")])])
        later = [RegisterValue(reg, Decimal(1000 + total + error), "Wh")]
        result = ingest_registers([(meter, T0 + QH * 8, later)])
        kinds = [f.kind for f in result.findings]
        assert kinds == (["profile_register_mismatch"] if error else [])


def test_events_idempotent(meters):
    meter = meters[0]
    events = [
        MeterEvent(T0, 1, "0.0.99.98.0.255"),
        MeterEvent(T0 + timedelta(minutes=3), 2, "0-0:99.98.0*255", (Decimal("1.5"), b"\x01")),
    ]
    first = ingest_events([(meter, events)])
    assert (first.inserted, first.duplicates) == (2, 0)
    again = ingest_events([(meter, events)])
    assert (again.inserted, again.duplicates) == (0, 2)
    assert EventRecord.objects.filter(log="0-0:99.98.0*255").count() == 2
    assert EventRecord.objects.get(code=2).data == ["1.5", "01"]


def test_naive_timestamps_are_refused(meters):
    naive = block(datetime(2026, 6, 1), [(1, 1)])  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        ingest_profiles([(meters[0], naive)])


@pytest.mark.parametrize(
    ("zone", "day", "intervals"),
    [
        ("Europe/London", date(2026, 3, 29), 92),
        ("Europe/London", date(2026, 10, 25), 100),
        ("Europe/Berlin", date(2026, 3, 29), 92),
        ("Europe/Berlin", date(2026, 10, 25), 100),
    ],
)
def test_dst_day_rollup(settings, meters, import_channel, zone, day, intervals):
    settings.TIME_ZONE = zone
    start, end = day_bounds(day)
    assert (end - start) / QH == intervals
    # Two days of intervals around the DST day, stored in UTC without loss.
    first = start - timedelta(days=1)
    n = int((end + timedelta(days=1) - first) / QH)
    values = [(i % 11 + 1, 1) for i in range(n)]
    result = ingest_profiles([(meters[0], block(first, values))])
    assert result.inserted == n
    rollup = DailyEnergy.objects.get(meter=meters[0], channel=import_channel, day=day)
    inside = [v[0] for i, v in enumerate(values) if start < first + QH * (i + 1) <= end]
    assert len(inside) == intervals
    assert (rollup.intervals, rollup.value) == (intervals, sum(inside))


def test_rollup_matches_direct_sums_and_feeders(settings, world, meters, import_channel):
    settings.TIME_ZONE = "Europe/Berlin"
    for k, meter in enumerate(meters):
        values = [(k + 1 + i % 5, 2) for i in range(96 * 3)]
        ingest_profiles([(meter, block(T0, values))])
    for day in (date(2026, 6, 1), date(2026, 6, 2)):
        lo, hi = day_bounds(day)
        for meter in meters:
            direct = sum(v for _, v, _ in channel_series(meter.pk, import_channel, lo, hi))
            assert (
                DailyEnergy.objects.get(meter=meter, channel=import_channel, day=day).value
                == direct
            )
    per_feeder = feeder_daily_energy(IMPORT, date(2026, 6, 1), date(2026, 6, 2))
    lo, hi = day_bounds(date(2026, 6, 1))
    expected = sum(
        v for m in world.grid_a.meters for _, v, _ in channel_series(m.pk, import_channel, lo, hi)
    )
    assert per_feeder[(world.grid_a.feeder.pk, date(2026, 6, 1))] == expected
    # An estimated interval replaced by a measured one updates the rollup, never doubles it.
    before = DailyEnergy.objects.get(meter=meters[0], channel=import_channel, day=date(2026, 6, 2))
    ingest_profiles([(meters[0], block(T0, [(k + 1 + i % 5, 2) for i in range(96 * 3)]))])
    after = DailyEnergy.objects.get(meter=meters[0], channel=import_channel, day=date(2026, 6, 2))
    assert after.value == before.value


@pytest.mark.postgres
def test_direct_copy_falls_back_when_a_row_slipped_in(meters, import_channel, monkeypatch):
    """A concurrent writer between the check and the COPY: the key stops it, nothing doubles."""
    from meters.store import writes

    meter = meters[0]
    values = day_values(8)
    ingest_profiles([(meter, block(T0, values[:4]))])
    monkeypatch.setattr(writes, "_stored_meters", lambda cursor, series: set())
    result = ingest_profiles([(meter, block(T0, values))])
    assert (result.inserted, result.updated, result.duplicates) == (4, 0, 4)
    series = channel_series(meter.pk, import_channel, T0, T0 + QH * 8)
    assert [v for _, v, _ in series] == [Decimal(v[0]) for v in values]


def test_register_daily_energy(settings, meters, world):
    settings.TIME_ZONE = "Europe/London"
    meter, reg = meters[0], "1-0:1.8.0*255"
    channel = Channel.objects.get(meter_model=world.meter_model, obis=reg)
    reads = [  # (UTC read time, register): BST, so local midnight is 23:00 UTC
        (datetime(2026, 6, 1, 23, 0, tzinfo=UTC), 1000),  # end of local 1 June
        (datetime(2026, 6, 2, 12, 0, tzinfo=UTC), 1400),
        (datetime(2026, 6, 2, 23, 0, tzinfo=UTC), 1900),  # end of local 2 June
    ]
    for read_at, value in reads[::-1]:  # out of order on purpose
        ingest_registers([(meter, read_at, [RegisterValue(reg, Decimal(value), "Wh")])])
    day = DailyEnergy.objects.get(meter=meter, channel=channel, day=date(2026, 6, 2))
    assert (day.value, day.intervals) == (900, 2)
    assert not DailyEnergy.objects.filter(channel=channel, day=date(2026, 6, 1)).exists()
