"""Planner statistics of the store's tables, kept fresh by their writers (PostgreSQL only).

A month's interval partition starts empty and gains ~100 rows per meter a day. Until it is
analyzed the planner has no statistics for it: `meter_id = ?` is taken to match 0.5 % of
its rows, so the write path's lookups of one batch's meters (is anything stored in their
span? where does each profile stop?) were planned as hash joins over the whole partition,
and PostgreSQL's CPU per batch grew with the rows already stored that day (docs/scaling.md:
1.0 -> 2.7 ms per meter across a 20,000-meter night). Autovacuum does not close that gap on
its own: it analyzes a table only after 10 % of it changed and a naptime passed, not at all
where it is turned off, and never a partitioned table's parent.

So every process that writes counts its rows per table (after commit) and, every
`CHECK_ROWS` of them, looks at the table's `n_mod_since_analyze`: when more than
`STALE_FRACTION` of the table (at least `MIN_CHANGED` rows) changed since its last
ANALYZE, or it was never analyzed, it runs ANALYZE on it -- one process at a time per
table (a try-lock; the others go on writing). ANALYZE reads a fixed sample (300 x the
statistics target rows: ~0.1-0.2 s at any size), and growth by half between two keeps
their number to the logarithm of the rows (~11 over a 20,000-meter night, ~20 on the
first day of a month at 1,000,000 meters) while the planner's rows per meter stay within
1.5x of the truth. The counts it reads are the cumulative statistics' (flushed by each
backend about once a second): a look may miss the last second's rows, never for long.
"""

from __future__ import annotations

import logging
import zlib

from django.db import connection, transaction

CHECK_ROWS = 20_000  # rows written by this process into a table between two looks
STALE_FRACTION = 0.5  # of the table's rows changed since its last ANALYZE
MIN_CHANGED = 10_000  # rows, below which a table is never analyzed again
LOCK_KEY = 0x414D4953  # pg_try_advisory_xact_lock(key, table): one ANALYZE at a time
logger = logging.getLogger(__name__)

_written: dict[str, int] = {}  # table -> rows written by this process since the last look


def note_written(table: str, rows: int) -> None:
    """`rows` were written into `table` by the transaction being committed: counted once it
    commits; every CHECK_ROWS rows the table's statistics are looked at."""
    if rows <= 0 or connection.vendor != "postgresql":
        return
    transaction.on_commit(lambda: _count(table, rows))


def _count(table: str, rows: int) -> None:
    total = _written.get(table, 0) + rows
    if total < CHECK_ROWS:
        _written[table] = total
        return
    _written[table] = 0
    try:
        refresh_if_stale(table)
    except Exception:  # never fail a committed write over its statistics
        logger.exception("statistics of %s not refreshed", table)


def is_stale(tuples: float, changed: int) -> bool:
    """Never analyzed (reltuples -1), or more than the fraction changed since."""
    return tuples < 0 or changed >= max(MIN_CHANGED, STALE_FRACTION * tuples)


def refresh_if_stale(table: str) -> bool:
    """ANALYZE `table` when its statistics are stale (see the module docstring) and no other
    process is analyzing it; True if it was analyzed."""
    if connection.vendor != "postgresql":
        return False
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.reltuples, coalesce(s.n_mod_since_analyze, 0) FROM pg_class c "
            "LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(%s)",
            [table],
        )
        row = cursor.fetchone()
        if row is None or not is_stale(*row):
            return False
        key = zlib.crc32(table.encode()) - 2**31  # an int4 per table name
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_KEY, key])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    logger.info("analyzed %s (%d rows, %d changed since)", table, max(row[0], 0), row[1])
    return True
