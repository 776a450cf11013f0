"""Exporters of data-query results: XML and CSV stream, XLSX and PDF are written in chunks.

Every exporter takes a `meters.store.query.DataQuery` and consumes its rows once, lazily, so an
export of millions of values keeps a constant memory footprint. `progress(n)` is called
every `PROGRESS_EVERY` rows (the queued export updates its progress row with it).
"""

from __future__ import annotations

from collections.abc import Callable

from meters.store.days import local_zone
from meters.store.query import Row

PROGRESS_EVERY = 5000
COLUMNS = ("meter", "obis", "quantity", "time", "value", "unit", "quality", "count")
FORMATS = {
    "xml": ("application/xml", "xml"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
}
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


def write(fmt: str, query, path: str, title: str = "", progress: Progress = None) -> None:
    """Write the export of `query` in `fmt` to `path`."""
    if fmt in ("xml", "csv"):
        from . import delimited, xml

        chunks = (
            xml.stream(query, title, progress)
            if fmt == "xml"
            else delimited.stream(query, progress)
        )
        with open(path, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
    elif fmt == "xlsx":
        from . import xlsx

        xlsx.write(query, path, title, progress)
    elif fmt == "pdf":
        from . import pdf

        pdf.write(query, path, title, progress)
    else:
        raise ValueError(f"unknown export format {fmt!r}")
