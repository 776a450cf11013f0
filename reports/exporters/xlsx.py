"""XLSX export with openpyxl in write-only mode: rows go to disk as they are appended."""

from __future__ import annotations

from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from amisite.tabular import xlsx_row
from meters.store.days import local_zone

from .rows import COLUMNS, Progress, counted

MAX_ROWS_PER_SHEET = 1_000_000  # Excel's limit is 1,048,576


def write(query, path: str, title: str = "", progress: Progress = None) -> None:
    workbook = Workbook(write_only=True)
    zone = local_zone()
    sheet = None
    rows_in_sheet = 0

    def new_sheet():
        ws = workbook.create_sheet(f"Data {len(workbook.worksheets) + 1}")
        ws.column_dimensions["A"].width = 14
        ws.column_dimensions["B"].width = 16
        ws.column_dimensions["C"].width = 26
        ws.column_dimensions["D"].width = 20
        header = []
        for name in COLUMNS:
            cell = WriteOnlyCell(ws, value=name)
            cell.font = Font(bold=True)
            header.append(cell)
        ws.append(xlsx_row(header))
        return ws

    info = workbook.create_sheet("Query")
    info.append(xlsx_row(["title", title]))
    info.append(xlsx_row(["resolution", query.resolution]))
    info.append(xlsx_row(["start", query.start.astimezone(zone).replace(tzinfo=None)]))
    info.append(xlsx_row(["end", query.end.astimezone(zone).replace(tzinfo=None)]))
    info.append(xlsx_row(["time zone", str(zone)]))
    info.append(xlsx_row(["channels", ", ".join(query.obis)]))
    for row in counted(query.rows(), progress):
        if sheet is None or rows_in_sheet >= MAX_ROWS_PER_SHEET:
            sheet, rows_in_sheet = new_sheet(), 0
        value = row.value
        # Exact decimals stay exact: integers as int, others as float only when needed.
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        sheet.append(
            xlsx_row(
                [
                    row.serial,
                    row.obis,
                    row.name,
                    row.ts.astimezone(zone).replace(tzinfo=None),  # Excel has no time zones
                    value,
                    row.unit,
                    row.quality,
                    row.count,
                ]
            )
        )
        rows_in_sheet += 1
    if sheet is None:
        new_sheet()
    workbook.save(path)
