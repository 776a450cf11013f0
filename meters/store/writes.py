"""Writes into the store: interval rows, register reads, events and unmapped values.

Every statement takes its table name from the model (`Model._meta.db_table`), so a model
that moves between modules keeps its writes. Each write is idempotent: a repeated read
changes nothing, and when two reads of one value meet the higher rank wins
(`meters.store.quality`).

Interval rows (`write_intervals`): on PostgreSQL, meters with no stored interval in the
batch's span are binary-COPYed straight into the store (the primary key stops a concurrent
writer that slipped in; the batch then falls back); the others are COPYed into a temporary
staging table and moved by ONE `INSERT ... SELECT ... ON CONFLICT DO NOTHING` plus, only
when some keys were already stored, ONE `UPDATE ... FROM staging` where a rank rises. On
SQLite the same rule runs per row as `INSERT ... ON CONFLICT DO UPDATE ... WHERE <a rank
rises>`. The caller hands rows grouped per (meter, store group), times strictly increasing
(`GroupRows`); `collection.ingest` builds them from protocol values and validates them.

After commit, the rows written are counted per table so the month's partition, growing from
empty, gets its planner statistics in step (`meters.store.statistics`).

Callers run the writes inside their own transaction (with the rollup refresh). A write
into a compacted day first moves that day back into the interval table
(`compaction.decompact_for`), so late data merges by the same rule.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import repeat
from typing import Protocol

from django.db import IntegrityError, connection, transaction

from amisite import pgbulk

from . import compaction, partitions, statistics
from .models import EventRecord, IntervalReading, RegisterRead, UnmappedValue
from .quality import COLUMNS_PER_GROUP, column_mask, rank_sql, signed64

INTERVAL_TABLE = IntervalReading._meta.db_table
REGISTER_TABLE = RegisterRead._meta.db_table
EVENT_TABLE = EventRecord._meta.db_table
STAGE_TABLE = "ami_stage_interval"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


class ColumnValues(Protocol):
    """One channel's column of a `GroupRows`: stored integers (None: missing), flags."""

    values: list
    flags: list


class GroupRows(Protocol):
    """One meter's interval rows of one store group, interval ends strictly increasing;
    `columns` maps a column number (0..7) to its values."""

    meter_id: int
    group: int
    timestamps: list
    columns: Mapping[int, ColumnValues]


# ------------------------------------------------------------------ intervals


def write_intervals(groups: Sequence[GroupRows]) -> tuple[int, int]:
    """Store interval rows (see the module docstring); (inserted, updated) rows."""
    if not groups:
        return 0, 0
    if connection.vendor == "postgresql":
        return _intervals_postgres(groups)
    return _intervals_portable(groups)


def _quality_words(series: GroupRows) -> list[int] | None:
    """Packed quality word per row, or None when every flag is 0."""
    cols = [(c, col.flags) for c, col in series.columns.items() if any(col.flags)]
    if not cols:
        return None
    words = [0] * len(series.timestamps)
    for c, flags in cols:
        shift = 8 * c
        words = [w | (f << shift) for w, f in zip(words, flags, strict=True)]
    return [signed64(w) for w in words]


def _merge_sql(new: str, old: str, width: int) -> tuple[list[str], str]:
    """SET items and WHERE condition merging columns v0..v{width-1} of `new` into `old`."""
    rises = [
        f"{rank_sql(f'{new}.q', column=c, value=f'{new}.v{c}')} > "
        f"{rank_sql(f'{old}.q', column=c, value=f'{old}.v{c}')}"
        for c in range(width)
    ]
    sets = [
        f"v{c} = CASE WHEN {r} THEN {new}.v{c} ELSE {old}.v{c} END" for c, r in enumerate(rises)
    ]
    q_parts = [
        f"(CASE WHEN {r} THEN {new}.q ELSE {old}.q END & {column_mask(c)})"
        for c, r in enumerate(rises)
    ]
    if width < COLUMNS_PER_GROUP:  # flags of columns this batch does not carry stay
        rest = signed64(~sum(0xFF << (8 * c) for c in range(width)) & 0xFFFFFFFFFFFFFFFF)
        q_parts.append(f"({old}.q & {rest})")
    sets.append("q = " + " | ".join(q_parts))
    return sets, "(" + " OR ".join(rises) + ")"


@lru_cache(maxsize=16)
def upsert_clause(width: int) -> str:
    """ON CONFLICT clause of the row-by-row path (SQLite)."""
    sets, rises = _merge_sql("excluded", INTERVAL_TABLE, width)
    return f"ON CONFLICT (meter_id, grp, ts) DO UPDATE SET {', '.join(sets)} WHERE {rises}"


@lru_cache(maxsize=16)
def update_from_stage(width: int) -> str:
    """UPDATE raising stored values from the staging table where the rank rises (PostgreSQL)."""
    sets, rises = _merge_sql("s", "t", width)
    return (
        f"UPDATE {INTERVAL_TABLE} AS t SET {', '.join(sets)} FROM {STAGE_TABLE} AS s "
        f"WHERE t.meter_id = s.meter_id AND t.grp = s.grp AND t.ts = s.ts AND {rises}"
    )


_INT8 = struct.Struct(">iq")
_INT2 = struct.Struct(">ih")
_NULL = struct.pack(">i", -1)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


@lru_cache(maxsize=16)
def _row_struct(width: int) -> struct.Struct:
    return struct.Struct(">h" + "iq" * (3 + width) + "ih")


def _encode_copy(groups: list[GroupRows], width: int) -> bytes:
    """PostgreSQL binary COPY of (meter_id, ts, q, v0..v{width-1}, grp), a series at a time.

    A series without NULLs is packed by one C-level `map(struct.pack, ...)` over its columns.
    """
    pack = _row_struct(width).pack
    nfields = struct.pack(">h", 4 + width)
    out = [COPY_HEADER]
    eight, two = repeat(8), repeat(2)
    for s in groups:
        ts_us = [(t - PG_EPOCH) // ONE_US for t in s.timestamps]
        quality = _quality_words(s)
        columns = [s.columns.get(c) for c in range(width)]
        if all(col is not None and None not in col.values for col in columns):
            args = [repeat(4 + width), eight, repeat(s.meter_id), eight, ts_us, eight]
            args.append(quality if quality is not None else repeat(0))
            for col in columns:
                args += (eight, col.values)
            args += (two, repeat(s.group))
            out.append(b"".join(map(pack, *args)))
            continue
        for j, t in enumerate(ts_us):
            parts = [nfields, _INT8.pack(8, s.meter_id), _INT8.pack(8, t)]
            parts.append(_INT8.pack(8, quality[j] if quality is not None else 0))
            for col in columns:
                v = None if col is None else col.values[j]
                parts.append(_NULL if v is None else _INT8.pack(8, v))
            parts.append(_INT2.pack(2, s.group))
            out.append(b"".join(parts))
    out.append(COPY_TRAILER)
    return b"".join(out)


def _copy(cursor, table: str, groups: list[GroupRows], width: int) -> None:
    columns = ", ".join(["meter_id", "ts", "q"] + [f"v{c}" for c in range(width)] + ["grp"])
    pgbulk.copy_in(
        cursor,
        f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary)",
        _encode_copy(groups, width),
    )


def _stored_meters(cursor, groups: list[GroupRows]) -> set[int]:
    """Meters of the batch with any stored interval inside their series' time span.

    One index probe per meter, whatever the planner knows of the partition: the LATERAL
    subquery with LIMIT 1 is run per meter (an `EXISTS` was planned as a hash join over the
    whole partition while it had no statistics: a cost growing with the day's rows)."""
    spans: dict[int, list] = {}
    for s in groups:
        span = spans.setdefault(s.meter_id, [s.timestamps[0], s.timestamps[-1]])
        span[0], span[1] = min(span[0], s.timestamps[0]), max(span[1], s.timestamps[-1])
    cursor.execute(
        "SELECT u.m FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS u(m, lo, hi)"
        f" CROSS JOIN LATERAL (SELECT 1 FROM {INTERVAL_TABLE} t"
        " WHERE t.meter_id = u.m AND t.ts >= u.lo AND t.ts <= u.hi LIMIT 1) x",
        [list(spans), [v[0] for v in spans.values()], [v[1] for v in spans.values()]],
    )
    return {m for (m,) in cursor.fetchall()}


def _intervals_postgres(groups: list[GroupRows]) -> tuple[int, int]:
    """COPY straight into the store what cannot conflict; upsert the rest through staging.

    A meter with no stored interval inside the batch's time span cannot conflict, so its
    rows are COPYed into the partitioned table directly (a concurrent writer that slips in
    makes the COPY fail on the primary key: then everything takes the staging path).
    """
    first = min(s.timestamps[0] for s in groups)
    last = max(s.timestamps[-1] for s in groups)
    partitions.ensure_for(first, last)
    width = max(max(s.columns) for s in groups) + 1
    inserted = updated = 0
    # One transaction with the caller's: days of a compacted month come back to the interval
    # table first (under the month's shared lock), then merge by rank like any stored row.
    with transaction.atomic(), connection.cursor() as cursor:
        compaction.decompact_for(cursor, groups)
        stored = _stored_meters(cursor, groups)
        fresh = [s for s in groups if s.meter_id not in stored]
        rest = [s for s in groups if s.meter_id in stored]
        if fresh:
            try:
                with transaction.atomic():
                    _copy(cursor, INTERVAL_TABLE, fresh, width)
                inserted += sum(len(s.timestamps) for s in fresh)
            except IntegrityError:
                rest = groups
        if rest:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (meter_id bigint,"
                " ts timestamptz, q bigint, v0 bigint, v1 bigint, v2 bigint, v3 bigint,"
                " v4 bigint, v5 bigint, v6 bigint, v7 bigint, grp smallint)"
                " ON COMMIT DELETE ROWS"
            )
            cursor.execute(f"TRUNCATE {STAGE_TABLE}")
            _copy(cursor, STAGE_TABLE, rest, width)
            columns = ", ".join(["meter_id", "ts", "q"] + [f"v{c}" for c in range(width)] + ["grp"])
            # New rows in one pass (DO NOTHING takes no row locks); then raise the stored
            # rows whose rank rises. A repeated read writes nothing.
            cursor.execute(
                f"INSERT INTO {INTERVAL_TABLE} ({columns}) SELECT {columns} FROM {STAGE_TABLE} "
                "ON CONFLICT DO NOTHING"
            )
            inserted += cursor.rowcount
            if cursor.rowcount < sum(len(s.timestamps) for s in rest):
                cursor.execute(update_from_stage(width))
                updated = cursor.rowcount
    # The month's partition grows from empty: its planner statistics are kept up with it.
    for month in {partitions.month_of(first), partitions.month_of(last)}:
        statistics.note_written(partitions.partition_name(month), inserted + updated)
    return inserted, updated


def _intervals_portable(groups: list[GroupRows]) -> tuple[int, int]:
    """Row by row with the same merge rule (SQLite): correct, slower."""
    adapt = connection.ops.adapt_datetimefield_value
    existing = 0
    params = []
    for s in groups:
        stored = IntervalReading.objects.filter(
            meter_id=s.meter_id, group=s.group, ts__gte=s.timestamps[0], ts__lte=s.timestamps[-1]
        ).values_list("ts", flat=True)
        existing += len(set(stored).intersection(s.timestamps))
        quality = _quality_words(s)
        columns = [s.columns.get(c) for c in range(COLUMNS_PER_GROUP)]
        for j, t in enumerate(s.timestamps):
            values = [None if col is None else col.values[j] for col in columns]
            q = quality[j] if quality is not None else 0
            params.append((s.meter_id, adapt(t), q, *values, s.group))
    columns = ["meter_id", "ts", "q"] + [f"v{c}" for c in range(COLUMNS_PER_GROUP)] + ["grp"]
    sql = (
        f"INSERT INTO {INTERVAL_TABLE} ({', '.join(columns)}) VALUES "
        f"({', '.join(['%s'] * len(columns))}) {upsert_clause(COLUMNS_PER_GROUP)}"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        changed = cursor.rowcount
    inserted = len(params) - existing
    return inserted, changed - inserted


# ------------------------------------------------------------------ registers


def write_registers(reads: dict[tuple[int, int, datetime], list]) -> tuple[int, int]:
    """Upsert register reads {(meter, channel, read_at): [value, capture time, flags]}
    where the rank rises; (inserted, updated)."""
    sql_cols = "(meter_id, channel_id, read_at, value, capture_time, quality)"
    t = REGISTER_TABLE

    clause = (
        "ON CONFLICT (meter_id, channel_id, read_at) DO UPDATE SET value = excluded.value, "
        "capture_time = excluded.capture_time, quality = excluded.quality "
        f"WHERE {rank_sql('excluded.quality')} > {rank_sql(f'{t}.quality')}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":
        rows = [(m, c, t_, v, cap, q) for (m, c, t_), (v, cap, q) in reads.items()]
        with connection.cursor() as cursor:
            fresh = pgbulk.execute_rows(
                cursor,
                f"INSERT INTO {t} {sql_cols} %s {clause} RETURNING (xmax = 0)",
                rows,
                ["bigint", "bigint", "timestamptz", "bigint", "timestamptz", "smallint"],
                fetch=True,
            )
        inserted = sum(1 for (f,) in fresh if f)
        statistics.note_written(t, len(fresh))
        return inserted, len(fresh) - inserted
    existing = set()
    for m, c, t_ in reads:
        if RegisterRead.objects.filter(meter_id=m, channel_id=c, read_at=t_).exists():
            existing.add((m, c, t_))
    params = [
        (m, c, adapt(t_), v, adapt(cap) if cap else None, q)
        for (m, c, t_), (v, cap, q) in reads.items()
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {t} {sql_cols} VALUES (%s, %s, %s, %s, %s, %s) {clause}", params
        )
        changed = cursor.rowcount
    inserted = len(reads) - len(existing)
    return inserted, changed - inserted


# ------------------------------------------------------------------ events and unmapped values


def write_events(rows: Mapping[tuple[int, str, datetime, int], str]) -> int:
    """Insert event-log entries {(meter, log, time, code): data as JSON text}; an entry
    already stored is skipped. Returns how many were new."""
    if not rows:
        return 0
    sql = f"INSERT INTO {EVENT_TABLE} (meter_id, log, ts, code, data) %s ON CONFLICT DO NOTHING"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            done = pgbulk.execute_rows(
                cursor,
                sql + " RETURNING 1",
                [(*k, d) for k, d in rows.items()],
                ["bigint", "text", "timestamptz", "integer", "jsonb"],
                fetch=True,
            )
            return len(done)
        adapt = connection.ops.adapt_datetimefield_value
        cursor.executemany(
            sql.replace("%s", "VALUES (%s, %s, %s, %s, %s)"),
            [(m, log, adapt(ts), code, d) for (m, log, ts, code), d in rows.items()],
        )
        return cursor.rowcount


def write_unmapped(objs: list[UnmappedValue]) -> None:
    """Keep values the store could not place; one already kept is skipped."""
    if objs:
        UnmappedValue.objects.bulk_create(objs, batch_size=1000, ignore_conflicts=True)
