"""Closed months compacted: one row per (meter, store group, UTC day) instead of one per interval.

The interval table (`IntervalReading`, one wide row per interval end) costs ~35-42 B per
value on disk with its primary key, most of it per-row overhead (tuple header, key, the
quality word). Once a month is closed -- nothing is written there any more in the normal
course -- `compact_month` moves its rows into `meters_intervalday` (PostgreSQL only,
range-partitioned by month on `day`), one row per (meter_id, grp, day):

* `n` rows; their interval ends are `day 00:00 UTC + first_s + k * step_s` (k = 0..n-1)
  when regular, else the offsets in seconds are kept in `offs`;
* `v4` (every value fits 32 bits) or `v8`: the values as a 2-D array [column][row], only
  up to the last column used; a missing value is an array NULL (one bit);
* `q`: the packed quality words per row, NULL when every word is 0 (the usual day).

About 5 B per value including the primary key (bench/storage.py).

Readers never see the difference: the view `meters_interval` (`StoredInterval`) is the
interval table UNION ALL the compacted rows unpacked into the same columns, plus a `day`
column (the UTC day of `ts`) so a reader bounding `day` lets PostgreSQL prune months and
use the compacted table's key; every reader of `meters.store` reads it through
`stored_intervals` / `VIEW`.

Guarantees:

* **One transaction per chunk** (a range of meter ids of one month): the chunk's rows are
  deleted from the interval partition and inserted compacted by ONE statement; a killed run
  leaves each chunk either done or untouched, and a second run carries on (idempotent).
  The beat task also fills, in the same transaction, the hourly rollup of the chunk's days
  that lack it (`after_chunk`: `rollups.fill_missing_hours`; compaction changes no sum, so
  the rollups of days that have them stay as they are).
* **Late data** into a compacted day: the write path (`meters.store.writes`) first moves
  the affected days back into the interval table (`decompact`, same transaction as the
  write), then merges by rank as for any stored row; a later compaction packs them again.
  Writers of a month before the current one hold a shared advisory lock on that month;
  compaction holds it exclusively per chunk, so a write never races a chunk.
* Rows whose interval end has a fraction of a second stay in the interval table (the
  compact form keeps whole seconds); they are still read through the view.
* The current month is never compacted, nor a month closed less than
  `AMI_COMPACT_AFTER_DAYS` (default 7, at least 1) days ago.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction

from . import partitions
from .models import IntervalReading, StoredInterval

HOT = IntervalReading._meta.db_table
VIEW = StoredInterval._meta.db_table
TABLE = "meters_intervalday"
LOCK_KEY = 0x414D4943  # pg_advisory_xact_lock(key, month index): compaction vs late writes
COLUMNS = 8
TRUNCATE_LOCK_TIMEOUT = "5s"
logger = logging.getLogger(__name__)
AfterChunk = Callable[[int, int, date, date], object]
_ALL = ", ".join(f"v{k}" for k in range(COLUMNS))

COMPACT_TABLE_SQL = f"""
CREATE TABLE {TABLE} (
    meter_id bigint NOT NULL,
    day date NOT NULL,
    first_s integer NOT NULL,
    step_s integer NOT NULL,
    grp smallint NOT NULL,
    n smallint NOT NULL,
    offs integer[],
    q bigint[],
    v4 integer[],
    v8 bigint[],
    PRIMARY KEY (meter_id, grp, day)
) PARTITION BY RANGE (day)
"""


def unpack_sql(alias: str = "c") -> str:
    """SELECT list + FROM of compacted rows as interval rows (meter_id, grp, ts, q, v0..v7,
    day); `{source}` is the compacted relation (a table or a CTE), aliased `alias`.

    Each array is unnested ONCE per compacted row (`ROWS FROM`, padded with NULLs where a
    column is absent): subscripting `v[k][i]` per interval would decode a compressed array
    and walk its null bitmap again for every value."""
    a = alias
    columns = ", ".join(
        f"unnest(coalesce({a}.v8[{k + 1}:{k + 1}], {a}.v4[{k + 1}:{k + 1}]::bigint[]))"
        for k in range(COLUMNS)
    )
    values = ", ".join(f"u.v{k}" for k in range(COLUMNS))
    return (
        f"SELECT {a}.meter_id, {a}.grp, ({a}.day::timestamp AT TIME ZONE 'UTC') + "
        f"coalesce(u.off, {a}.first_s + (u.i - 1) * {a}.step_s) * interval '1 second' AS ts, "
        f"coalesce(u.q, 0)::bigint AS q, {values}, {a}.day FROM {{source}} {a} "
        f"CROSS JOIN LATERAL ROWS FROM (generate_series(1, {a}.n), unnest({a}.offs), "
        f"unnest({a}.q), {columns}) AS u(i, off, q, {_ALL})"
    )


VIEW_SQL_POSTGRES = (
    f"CREATE VIEW {VIEW} AS SELECT meter_id, grp, ts, q, {_ALL}, "
    f"(ts AT TIME ZONE 'UTC')::date AS day FROM {HOT} UNION ALL "
    + unpack_sql().format(source=TABLE)
)
VIEW_SQL_PORTABLE = (
    f"CREATE VIEW {VIEW} AS SELECT meter_id, grp, ts, q, {_ALL}, date(ts) AS day FROM {HOT}"
)


def lateral_sql(outer: str) -> str:
    """A LATERAL subquery of every stored row (hot and compacted) of `outer`.meter_id ending in
    (`outer`.lo, `outer`.hi]: columns grp, ts, q, v0..v7 (PostgreSQL).

    For readers that JOIN intervals to a set of (meter, lo, hi) rows (the daily rollup): the
    view in a join is not parameterised (its compacted leg is a subquery), so PostgreSQL
    would hash-join whole tables; LATERAL runs both legs per outer row on their keys."""
    o = outer
    unpacked = unpack_sql("c").format(source=TABLE) + (
        f" WHERE c.meter_id = {o}.meter_id AND c.day >= ({o}.lo AT TIME ZONE 'UTC')::date"
        f" AND c.day <= ({o}.hi AT TIME ZONE 'UTC')::date"
    )
    return (
        f"SELECT h.grp, h.ts, h.q, {', '.join(f'h.v{k}' for k in range(COLUMNS))} FROM {HOT} h "
        f"WHERE h.meter_id = {o}.meter_id AND h.ts > {o}.lo AND h.ts <= {o}.hi "
        f"UNION ALL SELECT x.grp, x.ts, x.q, {', '.join(f'x.v{k}' for k in range(COLUMNS))} "
        f"FROM ({unpacked}) x WHERE x.ts > {o}.lo AND x.ts <= {o}.hi"
    )


_INT4 = "least({lo}) >= -2147483648 AND greatest({hi}) <= 2147483647"
COMPACT_SQL = f"""
WITH moved AS (
    DELETE FROM {{partition}} WHERE meter_id >= %s AND meter_id < %s
        AND ts = date_trunc('second', ts)
    RETURNING *
), r AS (
    SELECT m.*, (m.ts AT TIME ZONE 'UTC')::date AS day,
        extract(epoch FROM m.ts - ((m.ts AT TIME ZONE 'UTC')::date::timestamp
            AT TIME ZONE 'UTC'))::integer AS off
    FROM moved m
), d AS (
    SELECT r.*, off - lag(off) OVER (PARTITION BY meter_id, grp, day ORDER BY ts) AS dt FROM r
), g AS (
    SELECT meter_id, grp, day, count(*) AS n, min(off) AS first_s,
        min(dt) AS step, max(dt) AS step_max, array_agg(off ORDER BY ts) AS offs,
        CASE WHEN bool_or(q <> 0) THEN array_agg(q ORDER BY ts) END AS q,
        {
    _INT4.format(
        lo=", ".join(f"min(v{k})" for k in range(COLUMNS)),
        hi=", ".join(f"max(v{k})" for k in range(COLUMNS)),
    )
} AS fits,
        CASE {" ".join(f"WHEN count(v{k}) > 0 THEN {k + 1}" for k in reversed(range(COLUMNS)))}
            ELSE 0 END AS width,
        ARRAY[{", ".join(f"array_agg(v{k} ORDER BY ts)" for k in range(COLUMNS))}] AS v
    FROM d GROUP BY meter_id, grp, day
)
INSERT INTO {TABLE} (meter_id, day, first_s, step_s, grp, n, offs, q, v4, v8)
SELECT meter_id, day, first_s, coalesce(step, 0), grp, n,
    CASE WHEN step IS NOT DISTINCT FROM step_max THEN NULL ELSE offs END, q,
    CASE WHEN width > 0 AND fits IS NOT FALSE THEN v[1:width]::integer[] END,
    CASE WHEN width > 0 AND fits IS FALSE THEN v[1:width] END
FROM g
"""

DECOMPACT_SQL = f"""
WITH gone AS (
    DELETE FROM {TABLE} c
    USING unnest(%s::bigint[], %s::smallint[], %s::date[], %s::date[]) AS k(m, g, lo, hi)
    WHERE c.meter_id = k.m AND c.grp = k.g AND c.day >= k.lo AND c.day <= k.hi
    RETURNING c.*
)
INSERT INTO {HOT} (meter_id, grp, ts, q, {_ALL})
SELECT meter_id, grp, ts, q, {_ALL} FROM ({unpack_sql("x").format(source="gone")}) u
"""


def is_available() -> bool:
    return connection.vendor == "postgresql"


def month_index(month: date) -> int:
    return month.year * 12 + month.month - 1


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month.year:04d}{month.month:02d}"


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_bounds(start: datetime, end: datetime) -> dict[str, date]:
    """ORM filter bounding `day` for intervals ending in (start, end] (see the view)."""
    return {"day__gte": utc_day(start), "day__lte": utc_day(end)}


def stored_intervals(meter_ids: int | Iterable[int], group: int | None, start, end):
    """Every stored interval row (hot and compacted) of these meters ending in (start, end]:
    a `StoredInterval` queryset with the `day` bound that lets PostgreSQL prune."""
    rows = StoredInterval.objects.filter(ts__gt=start, ts__lte=end, **day_bounds(start, end))
    if isinstance(meter_ids, int):
        rows = rows.filter(meter_id=meter_ids)
    else:
        rows = rows.filter(meter_id__in=list(meter_ids))
    return rows if group is None else rows.filter(group=group)


def latest_stored(meter_id: int, group: int, at: datetime | None = None, **filters):
    """The newest stored row (`StoredInterval`) of a meter's group ending at or before `at`
    (None: any time) with `filters`. It looks back a month, then a year, then all time,
    bounding `day` first, so finding yesterday never unpacks a whole compacted history."""
    rows = StoredInterval.objects.filter(meter_id=meter_id, group=group, **filters)
    if at is not None:
        rows = rows.filter(ts__lte=at, day__lte=utc_day(at))
    anchor = at or datetime.now(UTC)
    for back in (timedelta(days=40), timedelta(days=400)):
        row = rows.filter(day__gte=utc_day(anchor - back)).order_by("-ts").first()
        if row is not None:
            return row
    return rows.order_by("-ts").first()


# ------------------------------------------------------------------ which months


def grace_days() -> int:
    value = getattr(settings, "AMI_COMPACT_AFTER_DAYS", None)
    if value is None:
        value = os.environ.get("AMI_COMPACT_AFTER_DAYS") or 7
    return max(1, int(value))


def closed_months(now: datetime | None = None) -> list[date]:
    """Months with an interval partition that may be compacted now (oldest first)."""
    now = now or datetime.now(UTC)
    current = partitions.month_of(now)
    out = []
    for month in sorted(partitions.partitions()):
        end = partitions.add_months(month, 1)
        closed_at = datetime(end.year, end.month, 1, tzinfo=UTC) + timedelta(days=grace_days())
        if month < current and closed_at <= now:
            out.append(month)
    return out


def ensure_compact_month(cursor, month: date) -> str:
    name = partition_name(month)
    nxt = partitions.add_months(month, 1)
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
        [month, nxt],
    )
    return name


# ------------------------------------------------------------------ compaction


def compact_month(
    month: date,
    *,
    chunk: int | None = None,
    now: datetime | None = None,
    after_chunk: AfterChunk | None = None,
) -> dict:
    """Compact one closed month, a chunk of meter ids per transaction (see the module doc).

    `after_chunk(first_meter, stop_meter, first_day, last_day)` runs in each chunk's
    transaction after its rows are packed (the task passes `rollups.fill_missing_hours`:
    days the hourly rollup lacks are filled as their month is compacted); the local days
    named are the month's UTC days and one either side, which cover the month in any zone.
    Returns {"month", "chunks", "rows" moved, "packed" compact rows, "truncated"}."""
    if not is_available():
        return {"month": str(month), "chunks": 0, "rows": 0, "packed": 0, "truncated": False}
    month = partitions.month_of(month)
    if month not in closed_months(now):
        raise ValueError(f"{month:%Y-%m} is not a closed month (see AMI_COMPACT_AFTER_DAYS)")
    chunk = chunk or int(os.environ.get("AMI_COMPACT_CHUNK_METERS", 500))
    hot = partitions.partition_name(month)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(meter_id), max(meter_id) FROM {hot}")
        lo, hi = cursor.fetchone()
    done = {"month": str(month), "chunks": 0, "rows": 0, "packed": 0, "truncated": False}
    if lo is not None:
        for first in range(lo, hi + 1, chunk):
            rows, packed = _compact_chunk(month, hot, first, first + chunk, after_chunk)
            done["chunks"] += 1
            done["rows"] += rows
            done["packed"] += packed
    done["truncated"] = _truncate_if_empty(month, hot)
    return done


def _compact_chunk(
    month: date, hot: str, first: int, stop: int, after_chunk: AfterChunk | None = None
) -> tuple[int, int]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_KEY, month_index(month)])
        ensure_compact_month(cursor, month)
        cursor.execute(
            f"SELECT count(*) FROM {hot} WHERE meter_id >= %s AND meter_id < %s "
            "AND ts = date_trunc('second', ts)",
            [first, stop],
        )
        rows = cursor.fetchone()[0]
        if not rows:
            return 0, 0
        cursor.execute(COMPACT_SQL.format(partition=hot), [first, stop])
        packed = cursor.rowcount
        if after_chunk is not None:
            last = partitions.add_months(month, 1)
            after_chunk(first, stop, month - timedelta(days=1), last)
        return rows, packed


def _truncate_if_empty(month: date, hot: str) -> bool:
    """Give the emptied month's pages back to the disk at once (no VACUUM needed).

    TRUNCATE waits for every reader of the partition and new readers queue behind it, so it
    gives up after `TRUNCATE_LOCK_TIMEOUT` (the deleted rows' space then goes back through
    autovacuum, and the next run tries again)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_KEY, month_index(month)])
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {hot})")
            if cursor.fetchone()[0]:
                return False
            cursor.execute(f"SET LOCAL lock_timeout = '{TRUNCATE_LOCK_TIMEOUT}'")
            cursor.execute(f"TRUNCATE {hot}")
    except OperationalError as exc:  # lock_timeout: readers held the partition
        logger.warning("compaction: %s not truncated (%s); autovacuum reclaims it", hot, exc)
        return False
    return True


def compact_closed(
    now: datetime | None = None, chunk: int | None = None, after_chunk: AfterChunk | None = None
) -> list[dict]:
    """Compact every closed month that still has interval rows (the beat task)."""
    out = []
    for month in closed_months(now):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {partitions.partition_name(month)})")
            if not cursor.fetchone()[0]:
                continue
        out.append(compact_month(month, chunk=chunk, now=now, after_chunk=after_chunk))
    return out


# ------------------------------------------------------------------ late data


def decompact_for(cursor, groups) -> int:
    """Before writing `groups` (GroupRows): move their compacted days back into the interval
    table, holding each month's shared lock to the end of the caller's transaction.
    Returns the compacted rows moved back. Only months before the current one can be
    compacted, so a batch of this month costs nothing."""
    current = partitions.month_of(datetime.now(UTC))
    keys = []
    months = set()
    for s in groups:
        first, last = s.timestamps[0], s.timestamps[-1]
        if partitions.month_of(first) >= current:
            continue
        keys.append((s.meter_id, s.group, utc_day(first), utc_day(last)))
        month = partitions.month_of(first)
        while month <= partitions.month_of(last) and month < current:
            months.add(month)
            month = partitions.add_months(month, 1)
    if not keys:
        return 0
    for month in sorted(months):
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", [LOCK_KEY, month_index(month)]
        )
    cursor.execute(DECOMPACT_SQL, [list(column) for column in zip(*keys, strict=True)])
    return cursor.rowcount


def detach_old(keep_from: date) -> list[str]:
    """Detach compacted partitions older than `keep_from` (retention, as for the intervals)."""
    if not is_available():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s""",
            [TABLE],
        )
        names = sorted(name for (name,) in cursor.fetchall())
        detached = []
        for name in names:
            stamp = name.rsplit("_p", 1)[-1]
            if len(stamp) == 6 and date(int(stamp[:4]), int(stamp[4:]), 1) < keep_from:
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
                detached.append(name)
    return detached
