"""What every data-query exporter shares: the columns, a row as text, progress counting."""

from __future__ import annotations

from collections.abc import Callable

from meters.store.days import local_zone
from meters.store.query import Row

PROGRESS_EVERY = 5000
COLUMNS = ("meter", "obis", "quantity", "time", "value", "unit", "quality", "count")
Progress = Callable[[int], None] | None


def local_time(row: Row) -> str:
    """Times are written in the utility's time zone with their offset."""
    return row.ts.astimezone(local_zone()).isoformat()


def as_text(row: Row) -> list[str]:
    return [
        row.serial,
        row.obis,
        row.name,
        local_time(row),
        "" if row.value is None else str(row.value),
        row.unit,
        row.quality,
        "" if row.count is None else str(row.count),
    ]


def counted(rows, progress: Progress):
    """Pass rows through, reporting progress every PROGRESS_EVERY rows and at the end."""
    n = 0
    for row in rows:
        yield row
        n += 1
        if progress and n % PROGRESS_EVERY == 0:
            progress(n)
    if progress:
        progress(n)
