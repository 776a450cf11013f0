"""Table reports (collection success, vending) as CSV: `columns` are (key, heading) pairs.

The data-query exporters write measurement rows; these reports are small tables already
built in memory, one dict per row. Both go out through `amisite.tabular.CsvWriter`, which
quotes text a spreadsheet would run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from io import StringIO

from django.http import HttpResponse

from amisite.tabular import CsvWriter

from . import FORMATS

Columns = Sequence[tuple[str, str]]


def _as_is(key: str, row: dict):
    return row[key]


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
