"""The one writer of tabular exports (CSV and XLSX): no cell is ever a live formula.

Spreadsheet programs run a cell that starts with ``= + - @``, a tab or a carriage return
as a formula (CSV injection). Every CSV and XLSX the application writes goes through
`CsvWriter` / `csv_line` / `xlsx_row` / `XlsxStream`, which write such text with a leading
apostrophe
(the registry import removes it again, so round trips are exact); numbers, and text
that is just a number ("-12.5"), are left alone. `tests/amisite/test_tabular.py` fails when code
writes CSV or XLSX rows any other way.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
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


class XlsxStream:
    """An XLSX file written row by row in flat memory, whatever its size: XlsxWriter in
    constant-memory mode (a row goes to a temporary file when the next one starts) with text
    as inline strings, so no table of every distinct text is kept. Cells are guarded like
    every other export; text is never read as a formula, a link or a number.

        book = XlsxStream(path)
        sheet = book.sheet("Title", ["heading", ...])  # headings in bold
        sheet.append([value, ...])  # None or "": no cell
        book.close()
    """

    def __init__(self, path) -> None:
        import xlsxwriter

        self._book = xlsxwriter.Workbook(
            os.fspath(path),
            {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
             "strings_to_numbers": False},
        )  # fmt: skip
        self._bold = self._book.add_format({"bold": True})
        self._date = self._book.add_format({"num_format": "yyyy-mm-dd"})
        self._time = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})

    def sheet(self, title: str, headings: Sequence[str]) -> XlsxSheet:
        sheet = XlsxSheet(self, self._book.add_worksheet(title[:31]))
        for col, heading in enumerate(headings):
            sheet.worksheet.write_string(0, col, guard(str(heading)), self._bold)
        return sheet

    def close(self) -> None:
        self._book.close()


class XlsxSheet:
    """One sheet of an `XlsxStream`: rows appended in order below the headings."""

    def __init__(self, stream: XlsxStream, worksheet) -> None:
        self.stream, self.worksheet, self.row = stream, worksheet, 1

    def append(self, cells: Iterable[Any]) -> None:
        ws, row = self.worksheet, self.row
        text, number = ws.write_string, ws.write_number
        for col, value in enumerate(cells):
            kind = type(value)
            if kind is str:
                if value:
                    text(row, col, guard(value))
            elif kind is Decimal or kind is int or kind is float:
                number(row, col, value)
            elif value is None:
                continue
            elif kind is bool:
                ws.write_boolean(row, col, value)
            elif isinstance(value, datetime):
                if value.tzinfo is not None:  # Excel has no zones: the ISO text keeps it
                    text(row, col, value.isoformat())
                else:
                    ws.write_datetime(row, col, value, self.stream._time)
            elif isinstance(value, date):
                ws.write_datetime(row, col, value, self.stream._date)
            else:
                text(row, col, guard(str(value)))
        self.row = row + 1
