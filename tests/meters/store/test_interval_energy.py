"""Interval energy of cumulative profile channels (meters/store/interval_energy.py), and every
consumer reading it: rollups (local day, DST), series at every resolution, feeder sums,
validation and the usage figure. An interval-style meter fed the same energy is the oracle.

Every DB test runs on SQLite and on PostgreSQL (DATABASE_URL=postgres://...): same results.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from collection.ingest import ingest_profiles
from collection.protocols.base import Channel as Col
from collection.protocols.base import ProfileBlock, ProfileRow
from meters.choices import Accumulation, ChannelKind, default_accumulation
from meters.models import Channel, Meter, MeterModel
from meters.store import DailyEnergy, IntervalReading, Quality, query
from meters.store.days import day_bounds
from meters.store.interval_energy import derive, energy_codes, energy_series, wrap_modulus
from meters.store.rollups import feeder_daily_energy
from vending.usage import energy_used

PROFILE = "1-0:99.1.0*255"
QH = timedelta(minutes=15)
T = datetime(2026, 6, 1, tzinfo=UTC)


def at(k: int) -> datetime:
    return T + QH * k


# ------------------------------------------------------------------ the rules (no database)


def test_default_accumulation_follows_value_group_d():
    assert default_accumulation("1-0:1.8.0*255") == Accumulation.CUMULATIVE
    assert default_accumulation("1-0:2.9.0*255") == Accumulation.CUMULATIVE
    assert default_accumulation("1-0:1.29.0*255") == Accumulation.INTERVAL
    assert default_accumulation("1-0:32.7.0*255") == Accumulation.INTERVAL
    assert energy_codes("1-0:1.8.0*255") == ["1-0:1.8.0*255", "1-0:1.29.0*255", "1-0:1.9.0*255"]
    assert energy_codes("1-0:32.7.0*255") == ["1-0:32.7.0*255"]


def test_differences_of_consecutive_captures():
    caps = [(at(1), 1010, 0), (at(2), 1025, 0), (at(3), 1025, 0)]
    assert derive(caps, (at(0), 1000, 0)) == [(at(1), 10, 0), (at(2), 15, 0), (at(3), 0, 0)]
    # The first capture ever has nothing to subtract: no energy, flagged missing.
    assert derive(caps)[0] == (at(1), None, Quality.MISSING)


def test_a_gap_makes_one_flagged_difference_over_it():
    caps = [(at(1), 1010, 0), (at(5), 1100, 0), (at(6), 1110, 0)]
    out = derive(caps, (at(0), 1000, 0), period=QH)
    assert out == [(at(1), 10, 0), (at(5), 90, Quality.MISSING), (at(6), 10, 0)]
    assert sum(v for _, v, _ in out) == 1110 - 1000  # nothing lost, nothing doubled


def test_a_missing_capture_is_skipped_not_zero():
    caps = [(at(1), 1010, 0), (at(2), None, Quality.MISSING), (at(3), 1030, 0)]
    out = derive(caps, (at(0), 1000, 0), period=QH)
    assert out[1] == (at(2), None, Quality.MISSING)
    assert out[2] == (at(3), 20, Quality.MISSING)  # over the missing capture


def test_a_register_wrap_counts_on_and_a_reset_is_never_negative_or_a_spike():
    assert wrap_modulus(99_999_990) == 100_000_000
    assert wrap_modulus(12_345_678) is None
    wrap = derive([(at(1), 99_999_995, 0), (at(2), 7, 0)], (at(0), 99_999_990, 0))
    assert [v for _, v, _ in wrap] == [5, 12]
    reset = derive([(at(1), 12_345_700, 0), (at(2), 3, 0), (at(3), 9, 0)], (at(0), 12_345_678, 0))
    assert reset == [(at(1), 22, 0), (at(2), None, Quality.NEGATIVE), (at(3), 6, 0)]


def test_flags_carry_over_and_estimates_mark_both_neighbours():
    clock = int(Quality.CLOCK_SUSPECT)
    est = int(Quality.ESTIMATED)
    caps = [(at(1), 1010, clock), (at(2), 1020, est), (at(3), 1030, 0)]
    out = derive(caps, (at(0), 1000, 0))
    assert [f for _, _, f in out] == [clock, est, est]


# ------------------------------------------------------------------ the store and its readers


def _models(org):
    """Two models of one meter: interval profile (x.29.0) and IDIS-style cumulative (x.8.0)."""
    interval = MeterModel.objects.create(manufacturer="T", name="interval", organisation=org)
    cumulative = MeterModel.objects.create(manufacturer="T", name="idis", organisation=org)
    for model, codes in ((interval, ("1-0:1.29.0*255",)), (cumulative, ("1-0:1.8.0*255",))):
        for code in codes:
            Channel.objects.create(
                meter_model=model, obis=code, name="+A", unit="Wh",
                kind=ChannelKind.PROFILE, profile_obis=PROFILE,
            )  # fmt: skip
        Channel.objects.create(
            meter_model=model, obis="1-0:1.8.0*255", name="+A reg", unit="Wh",
            kind=ChannelKind.REGISTER,
        )  # fmt: skip
    return interval, cumulative


def _energy(k: int) -> int:
    """Energy of interval k (ending at at(k + 1)), Wh: any deterministic shape."""
    return 40 + (k * 37) % 90


def _blocks(first: int, n: int, start_register: int = 5_000_000):
    """The same n intervals as an interval block and as a cumulative block (with the capture
    at the start, as the reader keeps it)."""
    interval_rows = tuple(
        ProfileRow(at(first + k + 1), (Decimal(_energy(first + k)),), None) for k in range(n)
    )
    register = start_register + sum(_energy(k) for k in range(first))
    cum_rows = [ProfileRow(at(first), (Decimal(register),), None)]
    for k in range(n):
        register += _energy(first + k)
        cum_rows.append(ProfileRow(at(first + k + 1), (Decimal(register),), None))
    return (
        ProfileBlock(PROFILE, (Col("1-0:1.29.0*255", "Wh"),), interval_rows, 900),
        ProfileBlock(PROFILE, (Col("1-0:1.8.0*255", "Wh"),), tuple(cum_rows), 900),
    )


@pytest.fixture
def pair(world):
    """Two meters, one of each style, on two feeders of organisation A."""
    interval_model, cumulative_model = _models(world.org_a)
    a, b = world.grid_a.meters[:2]
    Meter.objects.filter(pk=a.pk).update(meter_model=interval_model)
    Meter.objects.filter(pk=b.pk).update(meter_model=cumulative_model)
    return Meter.objects.get(pk=a.pk), Meter.objects.get(pk=b.pk)


def _daily(meter):
    return {
        d.day: (d.value, d.intervals)
        for d in DailyEnergy.objects.filter(meter=meter, channel__kind=ChannelKind.PROFILE)
    }


def test_both_styles_give_the_same_energy_everywhere(pair, world, settings):
    settings.TIME_ZONE = "Europe/London"
    interval_meter, cumulative_meter = pair
    interval_block, cumulative_block = _blocks(0, 96 * 3)
    ingest_profiles([(interval_meter, interval_block), (cumulative_meter, cumulative_block)])
    # The register values are stored exactly as given.
    cum = cumulative_meter.meter_model.channels.get(kind=ChannelKind.PROFILE)
    stored = IntervalReading.objects.filter(meter=cumulative_meter, ts=at(96)).get()
    assert stored.column(cum.profile_column)[0] == 5_000_000 + sum(_energy(k) for k in range(96))
    # Daily rollups: identical, and equal to the closed-form sum for the local day.
    daily_i, daily_c = _daily(interval_meter), _daily(cumulative_meter)
    assert daily_i == daily_c
    lo, hi = day_bounds(date(2026, 6, 2))
    expected = sum(_energy(k) for k in range(96 * 3) if lo < at(k + 1) <= hi)
    assert daily_c[date(2026, 6, 2)] == (expected, 96)
    # Series at every resolution, and the data query: the same values and flags.
    start, end = at(0), at(96 * 3)
    inter = interval_meter.meter_model.channels.get(kind=ChannelKind.PROFILE)
    for resolution in query.RESOLUTIONS:
        s, e = query.bucket_range(start, end, resolution)
        a = list(query.series(interval_meter.pk, inter, s, e, resolution))
        b = list(query.series(cumulative_meter.pk, cum, s, e, resolution))
        assert [(p.ts, p.value, p.count) for p in a] == [(p.ts, p.value, p.count) for p in b], (
            resolution
        )
    meters = Meter.objects.filter(pk__in=[interval_meter.pk, cumulative_meter.pk])
    q = query.DataQuery(meters, ["profile:1-0:1.29.0*255"], start, end, query.DAY)
    by_meter: dict[str, list] = {}
    for row in q.rows():
        by_meter.setdefault(row.serial, []).append((row.ts, row.value))
    assert by_meter[interval_meter.serial] == by_meter[cumulative_meter.serial]
    # Feeder sums: both meters hang below feeder A1; its sum counts each style once.
    sums = feeder_daily_energy("1-0:1.29.0*255", date(2026, 6, 1), date(2026, 6, 3))
    in_range = [v for day, (v, _) in daily_c.items() if day <= date(2026, 6, 3)]
    assert sum(sums.values()) == 2 * sum(in_range)
    # The usage figure (vending) reads the cumulative meter's derived energy too.
    used = energy_used(cumulative_meter, day_bounds(date(2026, 6, 2))[0], at(96 * 3) - QH)
    assert used == energy_used(interval_meter, day_bounds(date(2026, 6, 2))[0], at(96 * 3) - QH)


def test_a_later_read_completes_the_first_interval_of_the_next_day(pair):
    _, meter = pair
    _, first = _blocks(0, 96)
    _, second = _blocks(96, 96)
    ingest_profiles([(meter, first)])
    ingest_profiles([(meter, second)])
    daily = _daily(meter)
    assert daily[date(2026, 6, 2)] == (sum(_energy(k) for k in range(96, 192)), 96)


def test_dst_day_of_a_cumulative_meter_has_100_intervals(world, settings):
    settings.TIME_ZONE = "Europe/London"
    _, cumulative_model = _models(world.org_a)
    meter = world.grid_a.meters[0]
    Meter.objects.filter(pk=meter.pk).update(meter_model=cumulative_model)
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 23:00 BST, Oct 24
    rows = [ProfileRow(start + QH * k, (Decimal(1000 + 10 * k),), None) for k in range(0, 96 * 3)]
    ingest_profiles([(meter.pk, ProfileBlock(PROFILE, (Col("1-0:1.8.0*255", "Wh"),), tuple(rows)))])
    row = DailyEnergy.objects.get(meter_id=meter.pk, day=date(2026, 10, 25))
    assert (row.value, row.intervals) == (1000, 100)  # 25 hours of 10 Wh per quarter


def test_validation_looks_at_differences_and_reports_a_reset(pair):
    _, meter = pair
    rows = []
    register = 1_000_000
    for k in range(40):
        register = 5 if k == 30 else register + 50
        rows.append(ProfileRow(at(k), (Decimal(register),), None))
    result = ingest_profiles(
        [(meter, ProfileBlock(PROFILE, (Col("1-0:1.8.0*255", "Wh"),), tuple(rows)))]
    )
    kinds = [f.kind for f in result.findings]
    # No spike and no negative from a steadily rising register; the reset is reported once.
    assert kinds == ["register_reset"]
    channel = meter.meter_model.channels.get(kind=ChannelKind.PROFILE)
    energy = energy_series(meter.pk, channel, at(0), at(39))
    assert all(v is None or 0 <= v <= 50 for _, v, _ in energy)
    assert [f for ts, _, f in energy if ts == at(30)] == [Quality.NEGATIVE]


def test_series_channel_filter_names_the_kind(pair, client, world):
    _, meter = pair
    _, block = _blocks(0, 8)
    ingest_profiles([(meter, block)])
    client.force_login(world.operator_a)
    url = f"/api/meters/{meter.pk}/series/"
    params = {"start": at(0).isoformat(), "end": at(8).isoformat(), "resolution": "raw"}
    bare = client.get(url, params | {"channels": "1-0:1.8.0*255"}).json()["channels"]
    assert [c["kind"] for c in bare] == ["profile"]
    register = client.get(url, params | {"channels": "register:1-0:1.8.0*255"}).json()
    assert [c["kind"] for c in register["channels"]] == ["register"]
    both = client.get(url, params | {"channels": "profile:1-0:1.29.0*255,register:1-0:1.8.0*255"})
    assert [(c["obis"], c["kind"]) for c in both.json()["channels"]] == [
        ("1-0:1.8.0*255", "profile"),
        ("1-0:1.8.0*255", "register"),
    ]
    assert both.json()["channels"][0]["values"] == [str(_energy(k)) for k in range(8)]


@pytest.mark.parametrize(
    ("day", "hours"), [(date(2026, 10, 25), 25), (date(2026, 3, 29), 23), (date(2026, 6, 2), 24)]
)
def test_series_date_form_is_the_local_day_across_dst(pair, client, world, settings, day, hours):
    """start=end=<day> is that day in the utility's zone (it answered 400 before: Python
    3.11 read the date as a UTC datetime, start == end)."""
    settings.TIME_ZONE = "Europe/London"
    _, meter = pair
    lo, hi = day_bounds(day)
    n = int((hi - lo) / QH)
    rows = tuple(ProfileRow(lo + QH * k, (Decimal(1000 + 7 * k),), None) for k in range(n + 1))
    ingest_profiles([(meter, ProfileBlock(PROFILE, (Col("1-0:1.8.0*255", "Wh"),), rows, 900))])
    client.force_login(world.operator_a)
    body = client.get(
        f"/api/meters/{meter.pk}/series/",
        {"start": day.isoformat(), "end": day.isoformat(), "resolution": "raw"},
    )
    assert body.status_code == 200, body.content
    body = body.json()
    assert (body["start"], body["end"]) == (lo.isoformat(), hi.isoformat())
    assert hi - lo == timedelta(hours=hours) and n == hours * 4
    (channel,) = body["channels"]
    assert channel["values"] == ["7"] * n
    daily = client.get(
        f"/api/meters/{meter.pk}/series/",
        {"start": day.isoformat(), "end": day.isoformat(), "resolution": "day"},
    ).json()["channels"][0]
    assert (daily["values"], daily["counts"]) == ([str(7 * n)], [n])


def test_rebuild_rollups_after_the_accumulation_changes(pair):
    from django.core.management import call_command

    _, meter = pair
    _, block = _blocks(0, 96)
    channel = meter.meter_model.channels.get(kind=ChannelKind.PROFILE)
    Channel.objects.filter(pk=channel.pk).update(accumulation=Accumulation.INTERVAL)
    ingest_profiles([(meter, block)])  # summed as if interval: the running totals
    assert _daily(meter)[date(2026, 6, 1)][0] > 96 * 5_000_000
    Channel.objects.filter(pk=channel.pk).update(accumulation=Accumulation.CUMULATIVE)
    call_command("rebuild_rollups", "--meter", meter.serial)
    assert _daily(meter)[date(2026, 6, 1)] == (sum(_energy(k) for k in range(96)), 96)


def test_profile_register_check_compares_the_derived_energy(pair):
    """The register's difference between two reads against the cumulative profile's
    derived energy over the same span: equal passes, off by one is a finding."""
    from collection.ingest import ingest_registers
    from collection.protocols.base import RegisterValue

    _, meter = pair
    _, block = _blocks(0, 8)
    ingest_profiles([(meter, block)])
    start = 5_000_000

    def read(k, value):
        reg = RegisterValue("1-0:1.8.0*255", Decimal(value), "Wh")
        return ingest_registers([(meter, at(k) + timedelta(seconds=7), [reg])])

    read(2, start + _energy(0) + _energy(1))
    good = read(6, start + sum(_energy(k) for k in range(6)))
    assert [f.kind for f in good.findings] == []
    bad = read(8, start + sum(_energy(k) for k in range(8)) + 1)
    assert [f.kind for f in bad.findings] == ["profile_register_mismatch"]
