"""Monthly range partitions of the interval table (PostgreSQL only; a no-op elsewhere).

The interval table (`IntervalReading`) is partitioned by `ts` (UTC months) and has a
default partition, so an interval outside every monthly partition is stored, never lost. The beat
task `meters.ensure_partitions` creates the coming months ahead; a month that already has
rows in the default partition (a backfill of old history) gets its partition too, and its
rows move there. Ingest also creates the month of every timestamp it writes, so a backfill
does not pile up in the default partition between two beat runs.

Retention (`AMI_RETENTION_MONTHS`, default: keep everything) detaches older partitions:
they become plain tables an operator archives (pg_dump) and drops; nothing is deleted here.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction

from .models import IntervalReading

TABLE = IntervalReading._meta.db_table
DEFAULT = f"{TABLE}_default"
_NAME = re.compile(rf"^{TABLE}_p(\d{{4}})(\d{{2}})$")
_LOCK_KEY = 0x414D4950  # pg_advisory_xact_lock key: one partition change at a time

# Months known to have a partition, per process (partitions are never dropped while in use).
_known: set[date] = set()


def is_partitioned() -> bool:
    return connection.vendor == "postgresql"


def month_of(value: datetime | date) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
    return date(value.year, value.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month.year:04d}{month.month:02d}"


def partitions() -> dict[date, str]:
    """Monthly partitions attached now: month -> table name."""
    if not is_partitioned():
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
               WHERE p.relname = %s""",
            [TABLE],
        )
        found = {}
        for (name,) in cursor.fetchall():
            match = _NAME.match(name)
            if match:
                found[date(int(match[1]), int(match[2]), 1)] = name
    return found


def ensure_month(month: date) -> bool:
    """Create the partition of `month` (moving its rows out of the default); True if created."""
    month = month_of(month)
    if not is_partitioned() or month in _known:
        return False
    name = partition_name(month)
    lo = datetime(month.year, month.month, 1, tzinfo=UTC)
    nxt = add_months(month, 1)
    hi = datetime(nxt.year, nxt.month, 1, tzinfo=UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            _known.add(month)
            return False
        cursor.execute(f"SELECT 1 FROM {DEFAULT} WHERE ts >= %s AND ts < %s LIMIT 1", [lo, hi])
        stranded = cursor.fetchone() is not None
        if stranded:
            # The new range must be empty in the default partition before it can exist.
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {DEFAULT}")
        cursor.execute(
            f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", [lo, hi]
        )
        if stranded:
            cursor.execute(
                f"INSERT INTO {TABLE} SELECT * FROM {DEFAULT} WHERE ts >= %s AND ts < %s",
                [lo, hi],
            )
            cursor.execute(f"DELETE FROM {DEFAULT} WHERE ts >= %s AND ts < %s", [lo, hi])
            cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {DEFAULT} DEFAULT")
    transaction.on_commit(lambda: _known.add(month))
    return True


def ensure_for(start: datetime, end: datetime) -> list[str]:
    """Partitions for every month from `start` to `end` (ingest calls this per batch)."""
    if not is_partitioned():
        return []
    created = []
    month, last = month_of(start), month_of(end)
    while month <= last:
        if month not in _known and ensure_month(month):
            created.append(partition_name(month))
        month = add_months(month, 1)
    return created


def ensure_partitions(months_ahead: int = 2, now: datetime | None = None) -> list[str]:
    """This month and `months_ahead` more, plus months stranded in the default partition."""
    if not is_partitioned():
        return []
    now = now or datetime.now(UTC)
    wanted = {add_months(month_of(now), n) for n in range(months_ahead + 1)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC')::date FROM {DEFAULT}"
        )
        wanted.update(row[0] for row in cursor.fetchall())
    _known.clear()  # the beat task re-reads the truth
    return [partition_name(m) for m in sorted(wanted) if ensure_month(m)]


def retention_months() -> int | None:
    value = getattr(settings, "AMI_RETENTION_MONTHS", None)
    if value is None:
        value = os.environ.get("AMI_RETENTION_MONTHS") or None
    return int(value) if value is not None else None


def detach_old_partitions(keep_months: int | None = None, now: datetime | None = None) -> list[str]:
    """Detach monthly partitions older than the retention (None: keep everything)."""
    keep_months = retention_months() if keep_months is None else keep_months
    if not is_partitioned() or keep_months is None:
        return []
    oldest_kept = add_months(month_of(now or datetime.now(UTC)), -keep_months)
    detached = []
    for month, name in sorted(partitions().items()):
        if month < oldest_kept:
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
            _known.discard(month)
            detached.append(name)
    return detached
