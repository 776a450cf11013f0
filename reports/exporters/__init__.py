"""Exporters of data-query results: XML and CSV stream, XLSX and PDF are written in chunks.

Every exporter takes a `meters.store.query.DataQuery` and consumes its rows once, lazily, so an
export of millions of values keeps a constant memory footprint. `progress(n)` is called
every `PROGRESS_EVERY` rows (the queued export updates its progress row with it).
"""

from __future__ import annotations

from collections.abc import Iterator

from . import cim, delimited, pdf, xlsx, xml
from .rows import COLUMNS, PROGRESS_EVERY, Progress, as_text, counted, local_time

__all__ = ("COLUMNS", "FORMATS", "PROGRESS_EVERY", "as_text", "counted", "local_time", "stream")
FORMATS = {
    "xml": ("application/xml", "xml"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
    "cim": ("application/xml", "xml"),  # IEC 61968-9 MeterReadings (docs/api.md)
}
STREAMED = ("xml", "csv", "cim")


def stream(fmt: str, query, title: str = "", progress: Progress = None) -> Iterator[bytes]:
    """The export of `query` in a streamed format (xml, csv, cim), chunk by chunk."""
    if fmt == "xml":
        return xml.stream(query, title, progress)
    if fmt == "csv":
        return delimited.stream(query, progress)
    if fmt == "cim":
        return cim.readings_stream(query, title, progress)
    raise ValueError(f"{fmt!r} is not a streamed export format")


def write(fmt: str, query, path: str, title: str = "", progress: Progress = None) -> None:
    """Write the export of `query` in `fmt` to `path`."""
    if fmt in STREAMED:
        with open(path, "wb") as out:
            for chunk in stream(fmt, query, title, progress):
                out.write(chunk)
    elif fmt == "xlsx":
        xlsx.write(query, path, title, progress)
    elif fmt == "pdf":
        pdf.write(query, path, title, progress)
    else:
        raise ValueError(f"unknown export format {fmt!r}")
