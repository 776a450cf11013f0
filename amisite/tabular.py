"""The one writer of tabular exports (CSV and XLSX): no cell is ever a live formula.

Spreadsheet programs run a cell that starts with ``= + - @``, a tab or a carriage return
as a formula (CSV injection). Every CSV and XLSX the application writes goes through
`CsvWriter` / `csv_line` / `xlsx_row`, which write such text with a leading apostrophe
(the registry import removes it again, so round trips are exact); numbers, and text that
is just a number ("-12.5"), are left alone. `tests/amisite/test_tabular.py` fails when code
writes CSV or XLSX rows any other way.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def guard(value: Any) -> Any:
    """`value` as a cell no spreadsheet runs: formula-like text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def unguard(text: str) -> str:
    """The text `guard` was given (for imports of what we exported)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


class CsvWriter:
    """`csv.writer` whose every cell passes through `guard`."""

    def __init__(self, file, **kwargs) -> None:
        self._writer = csv.writer(file, **kwargs)

    def writerow(self, cells: Iterable[Any]):
        return self._writer.writerow([guard(cell) for cell in cells])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_line(cells: Iterable[Any], lineterminator: str = "\r\n") -> str:
    """One guarded CSV line."""
    buffer = io.StringIO()
    CsvWriter(buffer, lineterminator=lineterminator).writerow(cells)
    return buffer.getvalue()


def xlsx_row(cells: Iterable[Any]) -> list[Any]:
    """A row for openpyxl's `sheet.append`, plain values and `WriteOnlyCell`s guarded."""
    out = []
    for cell in cells:
        if hasattr(cell, "value") and hasattr(cell, "data_type"):
            guarded = guard(cell.value)
            if guarded is not cell.value:
                cell.value = guarded
            out.append(cell)
        else:
            out.append(guard(cell))
    return out
