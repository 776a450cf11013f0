"""Closed months compacted (meters/store/compaction.py): the same answers from compacted and
uncompacted data, late data merged by rank, a failed chunk leaves nothing half-done.

Real PostgreSQL throughout (the compacted table exists only there). The month used is
March 2025: always closed when these tests run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import IntegrityError, connection

from meters.choices import Accumulation, ChannelKind
from meters.models import Channel
from meters.store import (
    HOURS,
    DailyEnergy,
    HourlyEnergy,
    Quality,
    StoredInterval,
    compaction,
    interval_energy,
    partitions,
    query,
    rollups,
)
from meters.store.quality import pack_quality
from meters.store.writes import write_intervals
from meters.tasks import compact_store

pytestmark = pytest.mark.postgres

MONTH = datetime(2025, 3, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
PROFILE = "1-0:99.1.0*255"
E, M, ED = int(Quality.ESTIMATED), int(Quality.MISSING), int(Quality.EDITED)


@dataclass
class Column:
    values: list
    flags: list


@dataclass
class Rows:
    meter_id: int
    group: int
    timestamps: list
    columns: dict = field(default_factory=dict)


def channels(model):
    """The world's interval channel (1-0:1.29.0, column 0; 1-0:2.29.0 stays empty in column
    1) plus a cumulative one (differences) and a voltage (averaged)."""
    out = [Channel.objects.get(meter_model=model, kind=ChannelKind.PROFILE, obis="1-0:1.29.0*255")]
    for obis, unit, scaler, accumulation in (
        ("1-0:1.8.0*255", "Wh", 0, Accumulation.CUMULATIVE),
        ("1-0:32.7.0*255", "V", -1, Accumulation.INTERVAL),
    ):
        channel = Channel(
            meter_model=model,
            obis=obis,
            name=obis,
            unit=unit,
            scaler=scaler,
            kind=ChannelKind.PROFILE,
            accumulation=accumulation,
            profile_obis=PROFILE,
        )
        channel.save()
        out.append(channel)
    return out


def month_rows(meter_id: int, group: int, cols: list[int], days: int = 6) -> Rows:
    """Days of intervals with what real data has: estimates, a missing value, an edited
    value, a gap (an irregular day), a value beyond 32 bits on one day, the day boundary."""
    stamps = [MONTH + QH * (k + 1) for k in range(days * 96)]
    gap = set(range(96 + 10, 96 + 14))  # day 2: four intervals never read
    stamps = [t for k, t in enumerate(stamps) if k not in gap]
    energy, register, volts = [], [], []
    f0, f1, f2 = [], [], []
    total = 4_000_000
    for k, ts in enumerate(stamps):
        value = 100 + (meter_id * 7 + k * 13) % 400
        total += value
        energy.append(value)
        register.append(total + (5_000_000_000 if ts.day == 4 else 0))  # > int4 on day 4
        volts.append(2300 + k % 17)
        quiet = ts.day == 5  # one all-good day
        f0.append(E if k % 50 == 3 and not quiet else (ED if k == 77 else 0))
        f1.append(E if k % 70 == 5 and not quiet else 0)
        f2.append(0)
    energy[20], f0[20] = None, M  # a missing value in a stored row
    return Rows(
        meter_id,
        group,
        stamps,
        dict(zip(cols, [Column(energy, f0), Column(register, f1), Column(volts, f2)], strict=True)),
    )


def view_rows(meter_ids):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT meter_id, grp, ts, q, v0, v1, v2, v3, v4, v5, v6, v7 FROM meters_interval "
            "WHERE meter_id = ANY(%s) ORDER BY meter_id, grp, ts",
            [list(meter_ids)],
        )
        return cursor.fetchall()


def answers(meters, chans):
    """Everything callers read: series at every resolution, derived energy, periods, counts."""
    start, end = MONTH, MONTH + timedelta(days=7)
    out = {}
    for meter in meters:
        for ch in chans:
            for resolution in (query.RAW, query.HOUR, query.DAY, query.MONTH):
                out[meter.pk, ch.obis, resolution] = list(
                    query.series(meter.pk, ch, start, end, resolution)
                )
            out[meter.pk, ch.obis, "energy"] = interval_energy.energy_series(
                meter.pk, ch, start + timedelta(days=2), end
            )
        out[meter.pk, "period"] = query.profile_period(meter.pk, chans[0].profile_group, start, end)
    out["count"] = query.DataQuery(
        type(meters[0]).objects.filter(pk__in=[m.pk for m in meters]),
        [c.obis for c in chans],
        start,
        MONTH + timedelta(days=6),
        query.RAW,
    ).estimate_rows()
    return out


def compact_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM meters_intervalday")
        return cursor.fetchone()[0]


def hot_rows():
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.partition_name(MONTH.date())}")
        return cursor.fetchone()[0]


@pytest.fixture
def loaded(world):
    partitions._known.clear()  # months made by an earlier test were rolled back with it
    meters = world.grid_a.meters[:2]
    chans = channels(meters[0].meter_model)
    group = chans[0].profile_group
    assert {c.profile_group for c in chans} == {group}
    batch = [month_rows(m.pk, group, [c.profile_column for c in chans]) for m in meters]
    write_intervals(batch)
    refresh_rollups(batch)
    return meters, chans, group


def refresh_rollups(batch):
    rollups.refresh(
        rollups.days_touched({r.meter_id: (r.timestamps[0], r.timestamps[-1]) for r in batch})
    )


def daily():
    return sorted(
        DailyEnergy.objects.values_list(
            "meter_id", "channel_id", "day", "value", "intervals", "estimated"
        )
    )


def test_compacted_month_answers_exactly_as_before(loaded):
    meters, chans, group = loaded
    before_rows = view_rows([m.pk for m in meters])
    before = answers(meters, chans)
    assert any(p.flags & E for p in before[meters[0].pk, chans[0].obis, query.RAW])
    assert any(p.value is None for p in before[meters[0].pk, chans[0].obis, query.RAW])

    done = compaction.compact_month(MONTH.date(), chunk=1)
    assert done["rows"] == len(before_rows) and done["chunks"] == 2
    # One row per meter and UTC day (1st 00:15 .. 7th 00:00).
    assert done["packed"] == 2 * 7 and done["truncated"]
    assert hot_rows() == 0 and compact_rows() == 2 * 7
    with connection.cursor() as cursor:  # the forms chosen: gaps, flags and wide values kept
        cursor.execute(
            "SELECT day, offs IS NULL, q IS NULL, v4 IS NULL FROM meters_intervalday "
            "WHERE meter_id = %s ORDER BY day",
            [meters[0].pk],
        )
        forms = {d.day: rest for d, *rest in cursor.fetchall()}
    assert forms[2][0] is False  # the day with the gap keeps its offsets
    assert forms[5] == [True, True, False]  # a regular, all-good day: 32-bit values only
    assert forms[4][2] is True  # the day beyond 32 bits is kept in 64

    assert view_rows([m.pk for m in meters]) == before_rows
    assert answers(meters, chans) == before
    rollups_before = daily()
    assert rollups_before
    DailyEnergy.objects.all().delete()  # rebuilt from the compacted rows: the same
    refresh_rollups([month_rows(m.pk, group, [c.profile_column for c in chans]) for m in meters])
    assert daily() == rollups_before
    again = compaction.compact_month(MONTH.date())  # idempotent: nothing left to move
    assert again["rows"] == 0 and compact_rows() == 2 * 7


def hourly():
    return sorted(HourlyEnergy.objects.values_list("meter_id", "channel_id", "day", *HOURS))


def test_compaction_keeps_the_hours_and_fills_those_missing(loaded, settings):
    """The hourly rollup answers the same from compacted rows; days without hours (rolled
    up by a release before them) get them when the beat task compacts their month, in the
    chunk's transaction."""
    settings.TIME_ZONE = "Europe/Berlin"  # local days straddle the UTC days packed
    meters, chans, group = loaded
    HourlyEnergy.objects.all().delete()
    refresh_rollups([month_rows(m.pk, group, [c.profile_column for c in chans]) for m in meters])
    hours = hourly()
    assert {c for _, c, *_ in hours} == {c.pk for c in chans}  # cumulative and voltage too
    HourlyEnergy.objects.filter(meter_id=meters[1].pk).delete()
    assert rollups.missing_hours(meters[1].pk, meters[1].pk + 1)
    result = compact_store()
    assert any(r["month"] == "2025-03-01" and r["packed"] for r in result)
    assert hot_rows() == 0
    assert hourly() == hours
    HourlyEnergy.objects.all().delete()  # and rebuilt from the compacted rows: the same
    refresh_rollups([month_rows(m.pk, group, [c.profile_column for c in chans]) for m in meters])
    assert hourly() == hours


def test_late_data_into_a_compacted_day_merges_by_rank(loaded):
    meters, chans, group = loaded
    meter = meters[0]
    compaction.compact_month(MONTH.date())
    stored = {r[2]: r for r in view_rows([meter.pk])}
    stamps = sorted(stored)
    estimated = next(t for t in stamps if stored[t][3] & E and not stored[t][3] & ED)
    edited = next(t for t in stamps if stored[t][3] & ED)
    gap = MONTH + timedelta(days=1) + QH * 11  # one of the four never-read intervals
    assert gap not in stored
    late = Rows(
        meter.pk,
        group,
        sorted([estimated, edited, gap]),
        {0: Column([7777, 8888, 9999], [0, 0, 0])},
    )
    late.columns[0].values = [
        {estimated: 7777, edited: 8888, gap: 9999}[t] for t in late.timestamps
    ]
    write_intervals([late])
    after = {r[2]: r for r in view_rows([meter.pk])}
    assert after[estimated][4] == 7777 and after[estimated][3] & 0xFF == 0  # measured wins
    assert after[edited][4] == stored[edited][4] and after[edited][3] & ED  # edit stays
    assert after[gap][4] == 9999  # a new interval lands
    assert len(after) == len(stored) + 1
    untouched = [t for t in stamps if t not in (estimated, edited)]
    assert all(after[t] == stored[t] for t in untouched)  # nothing else lost or changed
    # The touched days went back to the interval table; other meters' days stay packed.
    assert hot_rows() > 0 and compact_rows() < 2 * 7
    # A repeated late write changes nothing; a second compaction packs it all again.
    write_intervals([late])
    assert {r[2]: r for r in view_rows([meter.pk])} == after
    compaction.compact_month(MONTH.date())
    assert hot_rows() == 0 and compact_rows() == 2 * 7
    assert {r[2]: r for r in view_rows([meter.pk])} == after


def test_a_failing_chunk_leaves_its_rows_where_they_were(loaded):
    meters, chans, group = loaded
    before = view_rows([m.pk for m in meters])
    last = meters[-1]
    with connection.cursor() as cursor:  # a conflicting packed row: its chunk must fail
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS meters_intervalday_p202503 PARTITION OF "
            "meters_intervalday FOR VALUES FROM ('2025-03-01') TO ('2025-04-01')"
        )
        cursor.execute(
            "INSERT INTO meters_intervalday (meter_id, day, first_s, step_s, grp, n) "
            "VALUES (%s, '2025-03-03', 900, 900, %s, 0)",
            [last.pk, group],
        )
    with pytest.raises(IntegrityError):
        compaction.compact_month(MONTH.date(), chunk=1)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM meters_intervalday WHERE n = 0")
    ids = sorted(m.pk for m in meters)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT meter_id FROM meters_intervalday ORDER BY 1",
        )
        packed = [r[0] for r in cursor.fetchall()]
    assert packed == [i for i in ids if i < last.pk]  # earlier chunks done, the failed one not
    assert view_rows(ids) == before  # nothing lost, nothing twice
    compaction.compact_month(MONTH.date(), chunk=1)  # the rerun finishes the month
    assert hot_rows() == 0 and view_rows(ids) == before


def test_open_months_are_never_compacted(loaded):
    now = datetime.now(UTC)
    assert partitions.month_of(now) not in compaction.closed_months(now)
    with pytest.raises(ValueError, match="not a closed month"):
        compaction.compact_month(partitions.month_of(now))
    # Within the grace after its end a month stays open too.
    just_after = datetime(2025, 4, 2, tzinfo=UTC)
    assert MONTH.date() not in compaction.closed_months(just_after)


def test_fraction_of_a_second_stays_in_the_interval_table(loaded):
    meters, _chans, group = loaded
    odd = MONTH + timedelta(days=5, seconds=30, microseconds=500)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO meters_intervalreading (meter_id, grp, ts, q, v0) VALUES (%s,%s,%s,%s,1)",
            [meters[0].pk, group, odd, pack_quality([E])],
        )
    before = view_rows([meters[0].pk])
    compaction.compact_month(MONTH.date())
    assert hot_rows() == 1
    assert view_rows([meters[0].pk]) == before


def test_the_beat_task_compacts_closed_months_and_the_view_is_scoped(loaded, world, settings):
    assert any(e["task"] == "meters.compact_store" for e in settings.CELERY_BEAT_SCHEDULE.values())
    result = compact_store()
    assert any(r["month"] == "2025-03-01" and r["packed"] for r in result)
    seen = set(StoredInterval.objects.restrict(world.operator_b).values_list("meter_id", flat=True))
    assert not seen  # organisation B sees none of A's compacted readings
    assert StoredInterval.objects.restrict(world.operator_a).filter(day__month=3).exists()


def test_nothing_reads_the_interval_table_past_the_view():
    """Readers of intervals go through `StoredInterval` (hot + compacted); a module reading
    `IntervalReading` or its table directly would miss every compacted month."""
    root = Path(__file__).resolve().parents[3]
    allowed = {
        "meters/models.py",  # re-exports the store's models into the app
        "meters/store/__init__.py",
        "meters/store/models.py",
        "meters/store/writes.py",  # writers write the interval table
        "meters/store/partitions.py",
        "meters/store/compaction.py",
    }
    pattern = re.compile(r"\bIntervalReading\b|meters_intervalreading")
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in {"tests", "bench", ".venv", "var"} or "/migrations/" in rel:
            continue
        if rel not in allowed and pattern.search(path.read_text()):
            offenders.append(rel)
    assert offenders == [], f"read intervals through meters.store.StoredInterval: {offenders}"
