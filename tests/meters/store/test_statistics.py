"""Planner statistics kept by the writers: a month's partition growing from empty is analyzed
when it was never analyzed, or once half of it changed since (real PostgreSQL)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from collection.ingest import ingest_profiles
from meters.store import partitions, statistics
from tests.meters.store.test_store import profile

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MONTH = datetime(2031, 3, 1, tzinfo=UTC)  # a month no other test writes
PARTITION = partitions.partition_name(MONTH.date())


def analyzed() -> tuple[float, int]:
    """(reltuples, times analyzed) of the month's partition, the writers' counts flushed."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(
            "SELECT c.reltuples, s.analyze_count FROM pg_class c "
            "JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(%s)",
            [PARTITION],
        )
        return cur.fetchone()


def day(meters, start) -> None:
    ingest_profiles([(m, profile(start, 96)) for m in meters])


def drop_partition() -> None:
    """Partitions and their statistics outlive a test's rows: start from none."""
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {PARTITION}")
    partitions._known.discard(MONTH.date())


@pytest.fixture
def small_thresholds(monkeypatch):
    drop_partition()
    statistics._written.clear()
    monkeypatch.setattr(statistics, "CHECK_ROWS", 150)
    monkeypatch.setattr(statistics, "MIN_CHANGED", 200)
    yield monkeypatch
    statistics._written.clear()
    drop_partition()


def test_a_growing_partition_is_analyzed_by_its_writers(world, small_thresholds):
    meters = world.grid_a.meters + world.grid_b.meters
    day(meters[:1], MONTH)  # 96 rows: below CHECK_ROWS, not looked at yet
    assert analyzed() == (-1, 0)  # never analyzed: the planner would guess
    day(meters[1:2], MONTH)  # 192 rows written by this process: looked at, never analyzed
    assert analyzed() == (192, 1)
    ingest_profiles([(meters[2], profile(MONTH, 30))])  # 60 more: not looked at
    ingest_profiles([(meters[3], profile(MONTH, 30))])
    assert analyzed() == (192, 1)
    # A look now: under MIN_CHANGED (60 rows since; up to 156 counted, as the counts of
    # the 96 rows analyzed may reach the statistics only after the ANALYZE).
    assert statistics.refresh_if_stale(PARTITION) is False
    small_thresholds.setattr(statistics, "CHECK_ROWS", 10**9)
    day(meters[:2], MONTH + timedelta(days=1))  # 192 more: over MIN_CHANGED and half
    assert analyzed() == (192, 1)
    assert statistics.refresh_if_stale(PARTITION) is True
    assert analyzed() == (192 + 60 + 192, 2)


def test_staleness_rule():
    assert statistics.is_stale(-1, 0)  # never analyzed
    assert not statistics.is_stale(1_000_000, 499_999)
    assert statistics.is_stale(1_000_000, 500_000)
    assert not statistics.is_stale(0, statistics.MIN_CHANGED - 1)
    assert statistics.is_stale(0, statistics.MIN_CHANGED)


def test_a_concurrent_analyze_is_not_waited_for(world, small_thresholds):
    """Another process holding the table's lock: this one goes on writing, no ANALYZE."""
    day(world.grid_a.meters[:1], MONTH)  # makes the partition, never analyzed
    s = connection.settings_dict
    other = psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"] or "postgres",
        dbname=s["NAME"],
        autocommit=False,
    )
    try:
        key = zlib.crc32(PARTITION.encode()) - 2**31
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [statistics.LOCK_KEY, key])
        assert statistics.refresh_if_stale(PARTITION) is False
        other.rollback()
        assert statistics.refresh_if_stale(PARTITION) is True
    finally:
        other.close()
