"""The measurement store: scoping through the meter, monthly partitions on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from collection.ingest import ingest_events, ingest_profiles, ingest_registers
from collection.protocols.base import Channel as Col
from collection.protocols.base import MeterEvent, ProfileBlock, ProfileRow, RegisterValue
from meters.store import (
    DailyEnergy,
    EventRecord,
    HourlyEnergy,
    IntervalReading,
    RegisterRead,
    UnmappedValue,
    column_quality,
    pack_quality,
    partitions,
)
from meters.tasks import maintain_partitions

PROFILE = "1-0:99.1.0*255"
QH = timedelta(minutes=15)


def profile(start, n, obis=("1-0:1.29.0*255", "1-0:2.29.0*255", "1-0:99.99.0*255")):
    rows = tuple(
        ProfileRow(start + QH * (i + 1), tuple(Decimal(i + k) for k in range(len(obis))))
        for i in range(n)
    )
    return ProfileBlock(PROFILE, tuple(Col(o, "Wh") for o in obis), rows, 900)


def fill(meters, start):
    for m in meters:
        ingest_profiles([(m, profile(start, 8))])
        ingest_registers([(m, start, [RegisterValue("1-0:1.8.0*255", Decimal(10), "Wh")])])
        ingest_events([(m, [MeterEvent(start, 1, "0-0:99.98.0*255")])])


def test_quality_packing_round_trips():
    flags = [0, 1, 2, 4, 8, 16, 32, 255]
    word = pack_quality(flags)
    assert -(1 << 63) <= word < 1 << 63
    assert [column_quality(word, c) for c in range(8)] == flags


STORE_MODELS = [
    IntervalReading, RegisterRead, EventRecord, UnmappedValue, DailyEnergy, HourlyEnergy
]  # fmt: skip


@pytest.mark.parametrize("model", STORE_MODELS, ids=lambda m: m.__name__)
def test_store_is_scoped_through_the_meter(world, model):
    start = datetime(2026, 5, 1, tzinfo=UTC)
    fill(world.grid_a.meters, start)
    fill(world.grid_b.meters, start)
    a_ids = {m.pk for m in world.grid_a.meters}
    b_ids = {m.pk for m in world.grid_b.meters}
    assert model.objects.exists()
    seen_by_b = set(model.objects.restrict(world.operator_b).values_list("meter_id", flat=True))
    assert seen_by_b == b_ids  # operator B sees no reading of organisation A's meters
    seen_by_a = set(model.objects.restrict(world.operator_a).values_list("meter_id", flat=True))
    assert seen_by_a == a_ids
    assert not model.objects.restrict(world.customer).exists()
    assert set(model.objects.restrict(world.superuser).values_list("meter_id", flat=True)) == (
        a_ids | b_ids
    )


def test_moving_a_grid_subtree_needs_no_reading_rewrite(world):
    """Scope follows the meter's organisation: reassigning the meter moves its readings."""
    start = datetime(2026, 5, 1, tzinfo=UTC)
    fill(world.grid_a.meters[:1], start)
    meter = world.grid_a.meters[0]
    assert IntervalReading.objects.restrict(world.operator_a).exists()
    type(meter).objects.filter(pk=meter.pk).update(organisation=world.org_b)
    assert not IntervalReading.objects.restrict(world.operator_a).exists()
    assert IntervalReading.objects.restrict(world.operator_b).exists()


def test_partitions_are_a_noop_without_postgres(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite behaviour")
    assert partitions.ensure_partitions() == []
    assert partitions.detach_old_partitions(keep_months=1) == []


def _partition_of(meter_id, ts):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM meters_intervalreading "
            "WHERE meter_id = %s AND ts = %s",
            [meter_id, ts],
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_partitions_ahead_idempotent_and_routing(world):
    now = datetime(2031, 1, 15, tzinfo=UTC)
    created = partitions.ensure_partitions(months_ahead=2, now=now)
    assert {"meters_intervalreading_p203101", "meters_intervalreading_p203103"} <= set(created)
    assert partitions.ensure_partitions(months_ahead=2, now=now) == []  # idempotent
    assert partitions.partitions().keys() >= {
        partitions.month_of(now),
        partitions.add_months(partitions.month_of(now), 2),
    }
    meter = world.grid_a.meters[0]
    # Ingest creates the months it writes, including the boundary: 31 Jan 23:45 -> 1 Feb 00:15
    # (partitions are UTC months of ts, the interval end).
    ingest_profiles([(meter, profile(datetime(2031, 1, 31, 23, 30, tzinfo=UTC), 3))])
    assert _partition_of(meter.pk, datetime(2031, 1, 31, 23, 45, tzinfo=UTC)).endswith("p203101")
    assert _partition_of(meter.pk, datetime(2031, 2, 1, 0, 0, tzinfo=UTC)).endswith("p203102")
    assert _partition_of(meter.pk, datetime(2031, 2, 1, 0, 15, tzinfo=UTC)).endswith("p203102")


@pytest.mark.postgres
def test_default_partition_keeps_out_of_range_rows_then_hands_them_over(world):
    meter = world.grid_a.meters[0]
    ts = datetime(2040, 7, 1, 0, 15, tzinfo=UTC)
    with connection.cursor() as cursor:  # as if written before any partition existed
        cursor.execute(
            "INSERT INTO meters_intervalreading (meter_id, grp, ts, q, v0) VALUES (%s,0,%s,0,5)",
            [meter.pk, ts],
        )
    assert _partition_of(meter.pk, ts) == "meters_intervalreading_default"
    created = partitions.ensure_partitions(months_ahead=0, now=datetime(2040, 7, 2, tzinfo=UTC))
    assert "meters_intervalreading_p204007" in created
    assert _partition_of(meter.pk, ts) == "meters_intervalreading_p204007"
    assert IntervalReading.objects.get(meter=meter, ts=ts).v0 == 5


@pytest.mark.postgres
def test_retention_detaches_old_months(world, settings):
    now = datetime(2035, 6, 10, tzinfo=UTC)
    partitions.ensure_partitions(months_ahead=0, now=datetime(2035, 1, 5, tzinfo=UTC))
    partitions.ensure_partitions(months_ahead=1, now=now)
    settings.AMI_RETENTION_MONTHS = 3
    detached = partitions.detach_old_partitions(now=now)
    assert "meters_intervalreading_p203501" in detached
    assert partitions.month_of(now) in partitions.partitions()
    settings.AMI_RETENTION_MONTHS = None
    assert partitions.detach_old_partitions(now=now) == []  # default: keep everything


def test_beat_task_is_registered_and_runs(db, settings):
    assert any(
        e["task"] == "meters.maintain_partitions" for e in settings.CELERY_BEAT_SCHEDULE.values()
    )
    result = maintain_partitions()  # the task body; the worker's signals are not for tests
    assert set(result) == {"created", "detached"}
