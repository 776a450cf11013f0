"""The hourly energy rollup (`HourlyEnergy`, meters/store/rollups.py): each local hour of a
day holds exactly the sum of the stored intervals ending in it, through ingest, late and
corrected reads, cumulative profiles and DST days; a failing block leaves nothing
half-written; days without hours are filled by the command (and, on PostgreSQL, by
compaction: tests/meters/store/test_compaction.py).

Every test runs on SQLite and on PostgreSQL (DATABASE_URL=postgres://...): the same rows.
The expected figures are summed here in Python from the stored rows themselves.
"""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from collection.ingest import ingest_profiles
from collection.protocols.base import Channel as Col
from collection.protocols.base import ProfileBlock, ProfileRow
from meters.choices import Accumulation, ChannelKind
from meters.models import Channel
from meters.store import (
    HOURS,
    DailyEnergy,
    HourlyEnergy,
    IntervalReading,
    Quality,
    StoredInterval,
    rollups,
)
from meters.store.days import day_bounds, local_day
from meters.store.writes import write_intervals

PROFILE = "1-0:99.1.0*255"
IMPORT, EXPORT = "1-0:1.29.0*255", "1-0:2.29.0*255"
QH = timedelta(minutes=15)
ONE_US = timedelta(microseconds=1)
JUNE = datetime(2026, 6, 1, tzinfo=UTC)


def block(start, values, channels=(IMPORT, EXPORT)):
    rows = tuple(
        ProfileRow(start + QH * (i + 1), tuple(None if v is None else Decimal(v) for v in vs))
        for i, vs in enumerate(values)
        if vs is not None
    )
    return ProfileBlock(PROFILE, tuple(Col(c, "Wh") for c in channels), rows, 900)


def values(n, seed=0):
    """Row i: (import, export); every 37th import missing, every 53rd row not read at all."""
    out = []
    for i in range(n):
        if (i + seed) % 53 == 5:
            out.append(None)
            continue
        out.append((None if (i + seed) % 37 == 3 else 50 + (i * 7 + seed) % 90, (i + seed) % 4))
    return out


@pytest.fixture
def meters(world):
    return world.grid_a.meters + world.grid_b.meters


def channel(world, obis):
    return Channel.objects.get(meter_model=world.meter_model, obis=obis)


def expected_hours(meter_id, chan, zone) -> dict[date, list]:
    """Per local day the 24 hour sums of `chan`'s stored values (None: no value in the hour)."""
    out: dict[date, list] = {}
    rows = StoredInterval.objects.filter(meter_id=meter_id, group=chan.profile_group)
    for ts, value in rows.values_list("ts", f"v{chan.profile_column}"):
        if value is None:
            continue
        local = (ts - ONE_US).astimezone(zone)
        hours = out.setdefault(local.date(), [None] * 24)
        hours[local.hour] = (hours[local.hour] or 0) + value
    return out


def stored_hours(meter_id, chan) -> dict[date, list]:
    rows = HourlyEnergy.objects.filter(meter_id=meter_id, channel=chan)
    return {r.day: r.hours for r in rows}


def assert_hours_are_interval_sums(meters, chans, zone):
    for meter in meters:
        for chan in chans:
            want = expected_hours(meter.pk, chan, zone)
            assert stored_hours(meter.pk, chan) == want, (meter.serial, chan.obis)
            daily = dict(
                DailyEnergy.objects.filter(meter=meter, channel=chan).values_list("day", "value")
            )
            assert daily == {d: sum(h for h in hours if h is not None) for d, hours in want.items()}


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("UTC", date(2026, 6, 2), 24),
        ("Europe/Berlin", date(2026, 3, 29), 23),  # 02:00-03:00 does not exist
        ("Europe/Berlin", date(2026, 10, 25), 25),  # 02:00-03:00 twice: one hour, 8 intervals
    ],
)
def test_ingest_rolls_up_each_local_hour_exactly(settings, world, meters, zone, day, hours):
    settings.TIME_ZONE = zone
    start, end = day_bounds(day)
    first = start - timedelta(days=1)
    n = int((end + timedelta(days=1) - first) / QH)
    for k, meter in enumerate(meters):
        ingest_profiles([(meter, block(first, values(n, seed=k)))])
    chans = [channel(world, IMPORT), channel(world, EXPORT)]
    assert_hours_are_interval_sums(meters, chans, ZoneInfo(zone))
    row = HourlyEnergy.objects.get(meter=meters[0], channel=chans[1], day=day)
    present = [h for h in row.hours if h is not None]
    assert len(present) == (23 if hours == 23 else 24)
    if hours == 23:
        assert row.h02 is None
    if hours == 25:  # the repeated hour holds both: eight quarter hours of export
        lo = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST .. 03:00 CET
        stamps = [lo + QH * (i + 1) for i in range(8)]
        stored = StoredInterval.objects.filter(meter_id=meters[0].pk, ts__in=stamps)
        assert row.h02 == sum(v for v in stored.values_list("v1", flat=True) if v is not None)


def test_late_and_corrected_intervals_re_roll_their_hours(settings, world, meters):
    settings.TIME_ZONE = "Europe/London"
    zone = ZoneInfo("Europe/London")
    meter, imp = meters[0], channel(world, IMPORT)
    day_values = [(100 + i, 1) for i in range(96 * 2)]
    gappy = [None if 40 <= i < 44 else v for i, v in enumerate(day_values)]  # an hour unread
    start = day_bounds(date(2026, 6, 1))[0]
    ingest_profiles([(meter, block(start, gappy))], validate=False)
    local = (start + QH * 41 - ONE_US).astimezone(zone)
    before = HourlyEnergy.objects.get(meter=meter, channel=imp, day=local.date())
    assert before.hours[local.hour] is None  # an hour without a read is no energy, not 0
    assert_hours_are_interval_sums([meter], [imp], zone)
    # The late read of that hour: only it lands, its hour and day are rolled up again.
    ingest_profiles([(meter, block(start, day_values))], validate=False)
    after = HourlyEnergy.objects.get(meter=meter, channel=imp, day=local.date())
    assert after.hours[local.hour] == sum(100 + i for i in range(40, 44))
    assert [h for k, h in enumerate(after.hours) if k != local.hour] == [
        h for k, h in enumerate(before.hours) if k != local.hour
    ]
    assert_hours_are_interval_sums([meter], [imp], zone)
    # An estimated value replaced by a measured one (its rank rises): the hour follows.
    at = JUNE + timedelta(days=4, hours=13)  # a day not read before
    for late_value, flags in ((1, Quality.ESTIMATED), (7, 0)):
        write_intervals([SimpleNamespace(
            meter_id=meter.pk, group=imp.profile_group, timestamps=[at],
            columns={imp.profile_column: SimpleNamespace(values=[late_value], flags=[flags])},
        )])  # fmt: skip
        rollups.refresh(rollups.days_touched({meter.pk: (at, at)}))
        row = HourlyEnergy.objects.get(meter=meter, channel=imp, day=local_day(at, zone))
        assert row.hours[(at - ONE_US).astimezone(zone).hour] == late_value
        assert sum(h is not None for h in row.hours) == 1
    # A repeated read writes nothing twice.
    ingest_profiles([(meter, block(start, day_values))], validate=False)
    assert_hours_are_interval_sums([meter], [imp], zone)


def test_cumulative_profile_hours_are_the_differences_of_its_captures(settings, world, meters):
    settings.TIME_ZONE = "Europe/Berlin"
    zone = ZoneInfo("Europe/Berlin")
    cumulative = Channel(
        meter_model=world.meter_model, obis="1-0:1.8.0*255", name="+A", unit="Wh", scaler=0,
        kind=ChannelKind.PROFILE, accumulation=Accumulation.CUMULATIVE, profile_obis=PROFILE,
    )  # fmt: skip
    cumulative.save()
    meter = meters[0]
    stamps = [JUNE + QH * (k + 1) for k in range(96 * 3)]
    register, total = [], 1_000_000
    for k in range(len(stamps)):
        total += 10 + k % 13
        register.append(total)
    rows = SimpleNamespace(
        meter_id=meter.pk, group=cumulative.profile_group, timestamps=stamps,
        columns={cumulative.profile_column: SimpleNamespace(values=register,
                                                            flags=[0] * len(stamps))},
    )  # fmt: skip
    write_intervals([rows])
    rollups.refresh(rollups.days_touched({meter.pk: (stamps[0], stamps[-1])}))
    want: dict[date, list] = defaultdict(lambda: [None] * 24)
    for k in range(1, len(stamps)):  # the first capture has no energy
        local = (stamps[k] - ONE_US).astimezone(zone)
        hours = want[local.date()]
        hours[local.hour] = (hours[local.hour] or 0) + register[k] - register[k - 1]
    assert stored_hours(meter.pk, cumulative) == dict(want)


def test_a_failing_batch_leaves_no_hours_and_no_intervals(settings, world, meters, monkeypatch):
    settings.TIME_ZONE = "UTC"
    meter = meters[0]

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed mid-batch")

    monkeypatch.setattr(rollups, "refresh_cumulative", killed)  # after the hours are written
    with pytest.raises(RuntimeError):
        ingest_profiles([(meter, block(JUNE, values(96)))])
    assert not IntervalReading.objects.filter(meter_id=meter.pk).exists()
    assert not DailyEnergy.objects.filter(meter=meter).exists()
    assert not HourlyEnergy.objects.filter(meter=meter).exists()


def test_missing_hours_are_filled_a_block_per_transaction(settings, world, meters, monkeypatch):
    settings.TIME_ZONE = "Europe/Berlin"
    zone = ZoneInfo("Europe/Berlin")
    for k, meter in enumerate(meters):
        ingest_profiles([(meter, block(JUNE, values(96 * 2, seed=k)))])
    chans = [channel(world, IMPORT), channel(world, EXPORT)]
    full = sorted(HourlyEnergy.objects.values_list("meter_id", "channel_id", "day", *HOURS))
    daily = sorted(DailyEnergy.objects.values_list("meter_id", "channel_id", "day", "value"))
    HourlyEnergy.objects.all().delete()  # days rolled up before the hourly rollup existed
    ids = sorted(m.pk for m in meters)
    assert {m for m, _ in rollups.missing_hours(ids[0], ids[-1] + 1)} == set(ids)
    real_refresh = rollups.refresh
    calls = []

    def dies_on_the_second_block(pairs, *args, **kwargs):
        calls.append(pairs)
        real_refresh(pairs, *args, **kwargs)  # writes its hours, then the worker dies
        if len(calls) == 2:
            raise RuntimeError("killed")

    monkeypatch.setattr(rollups, "refresh", dies_on_the_second_block)
    # one meter: two UTC days from 02:00 local touch three local days
    assert rollups.fill_missing_hours(ids[0], ids[0] + 1) == 3
    with pytest.raises(RuntimeError):
        rollups.fill_missing_hours(ids[1], ids[1] + 1)
    assert set(HourlyEnergy.objects.values_list("meter_id", flat=True)) == {ids[0]}
    monkeypatch.undo()
    settings.TIME_ZONE = "Europe/Berlin"
    call_command("rebuild_rollups", "--missing-hours", "--block", "1", stdout=io.StringIO())
    assert sorted(HourlyEnergy.objects.values_list("meter_id", "channel_id", "day", *HOURS)) == full
    assert (
        sorted(DailyEnergy.objects.values_list("meter_id", "channel_id", "day", "value")) == daily
    )
    assert_hours_are_interval_sums(meters, chans, zone)
    assert not rollups.missing_hours(ids[0], ids[-1] + 1)


def test_rebuild_recomputes_hours_after_an_accumulation_change(settings, world, meters):
    settings.TIME_ZONE = "UTC"
    meter, imp = meters[0], channel(world, IMPORT)
    ingest_profiles([(meter, block(JUNE, values(96)))])
    HourlyEnergy.objects.filter(meter=meter).update(h05=123456789)  # stale
    call_command("rebuild_rollups", "--meter", meter.serial, stdout=io.StringIO())
    assert_hours_are_interval_sums([meter], [imp], UTC)


def test_a_range_refresh_gives_what_ingest_gave(settings, world, meters):
    """`refresh_range` (one scan of a block of meters and days: backfills) writes the same
    daily and hourly rows as ingest's per-pair refresh, and nothing outside its range."""
    settings.TIME_ZONE = "America/New_York"
    for k, meter in enumerate(meters):
        ingest_profiles([(meter, block(JUNE, values(96 * 3, seed=k)))])
    ids = sorted(m.pk for m in meters)
    daily = sorted(DailyEnergy.objects.values_list("meter_id", "channel_id", "day", "value"))
    hours = sorted(HourlyEnergy.objects.values_list("meter_id", "channel_id", "day", *HOURS))
    DailyEnergy.objects.all().delete()
    HourlyEnergy.objects.all().delete()
    rollups.refresh_range(ids[0], ids[1], date(2026, 5, 31), date(2026, 6, 3))  # one meter
    assert {m for m, *_ in DailyEnergy.objects.values_list("meter_id")} == {ids[0]}
    rollups.refresh_range(ids[1], ids[-1] + 1, date(2026, 5, 31), date(2026, 6, 3))
    assert (
        sorted(DailyEnergy.objects.values_list("meter_id", "channel_id", "day", "value")) == daily
    )
    assert (
        sorted(HourlyEnergy.objects.values_list("meter_id", "channel_id", "day", *HOURS)) == hours
    )
