"""Table reports (collection success, vending, billing) as CSV or XLSX: `columns` are
(key, heading) pairs.

The data-query exporters write measurement rows; these reports are small tables already
built in memory or streamed, one dict per row. Both go out through `amisite.tabular`
(`CsvWriter`, `csv_line`, `XlsxStream`), which quotes text a spreadsheet would run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from io import StringIO

from django.http import HttpResponse

from amisite.tabular import CsvWriter, XlsxStream, csv_line
from meters.store.days import local_zone

from . import FORMATS

Columns = Sequence[tuple[str, str]]


def _as_is(key: str, row: dict):
    return row[key]


def report_cell(key: str, row: dict):
    """A machine-readable cell: decimals exact, times ISO in the utility's zone, booleans
    yes/no, nothing as empty."""
    value = row[key]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(local_zone()).isoformat()
    return value


def to_csv(columns: Columns, rows: Iterable[dict], value: Callable = _as_is) -> str:
    """The table as CSV text: a heading row, then `value(key, row)` for every column."""
    out = StringIO()
    writer = CsvWriter(out)
    writer.writerow([heading for _key, heading in columns])
    for row in rows:
        writer.writerow([value(key, row) for key, _heading in columns])
    return out.getvalue()


def csv_download(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type=FORMATS["csv"][0])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_lines(columns: Columns, rows: Iterable[dict], value: Callable = _as_is) -> Iterator[str]:
    """`to_csv` line by line, for a streamed response."""
    yield csv_line(heading for _key, heading in columns)
    for row in rows:
        yield csv_line(value(key, row) for key, _heading in columns)


Sheet = tuple[str, Columns, Iterable[dict]]


def write_xlsx(path, sheets: Iterable[Sheet], value: Callable = _as_is) -> None:
    """Write (title, columns, rows) sheets to an XLSX file, streamed (`XlsxStream`: rows go
    to disk as they come, memory stays flat whatever the number of rows)."""
    book = XlsxStream(path)
    for title, columns, rows in sheets:
        sheet = book.sheet(title, [heading for _key, heading in columns])
        for row in rows:
            sheet.append([value(key, row) for key, _heading in columns])
    book.close()  # only a whole file is written: a failure leaves none
