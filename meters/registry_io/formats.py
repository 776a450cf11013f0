"""Reading and writing the registry file in its three formats: CSV, XLSX and XML.

Readers turn a bounded byte string into `Record`s (line number + raw cells by column name),
one at a time (`iter_records`), and raise `FileError` for anything that makes the whole file
unusable, when they reach it. Writers stream.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from xml.parsers.expat import ExpatError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from amisite.tabular import csv_line, xlsx_row

from .columns import (
    BY_NAME,
    EXPORT_COLUMNS,
    REQUIRED,
    TEXT,
    Column,
    export_value,
    value_text,
)

FORMATS = ("csv", "xlsx", "xml")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xml": "application/xml; charset=utf-8",
}
XML_ROOT, XML_ROW = "meters", "meter"
SHEET = "meters"


class FileError(ValueError):
    """The file as a whole cannot be read; nothing is imported."""


@dataclass(frozen=True)
class Layout:
    """One kind of file: its columns, XML element names, sheet name and how to read a value."""

    by_name: dict[str, Column]
    export_columns: list[Column]
    required: list[str]
    xml_root: str
    xml_row: str
    sheet: str
    value: Callable[[Any, Column], Any]  # (exported object, column) -> Python value
    plural: str  # what the rows are, for messages


METERS = Layout(BY_NAME, EXPORT_COLUMNS, REQUIRED, XML_ROOT, XML_ROW, SHEET, export_value, "meters")


@dataclass
class Record:
    line: int  # CSV line, XLSX row, XML line of the <meter> element
    values: dict[str, Any]
    index: int = 0  # XML: position of the <meter> element (1-based)
    label: str = "meter"  # XML: the row element's name

    @property
    def where(self) -> str:
        return (
            f"{self.label} #{self.index} (line {self.line})" if self.index else f"row {self.line}"
        )


def read_records(
    data: bytes, fmt: str, *, max_rows: int, max_unpacked: int, layout: Layout = METERS
) -> list[Record]:
    return list(
        iter_records(data, fmt, max_rows=max_rows, max_unpacked=max_unpacked, layout=layout)
    )


def iter_records(
    data: bytes, fmt: str, *, max_rows: int, max_unpacked: int, layout: Layout = METERS
) -> Iterator[Record]:
    """The file's rows one by one: an import holds a chunk of rows at a time, not the file's."""
    if fmt == "csv":
        return _read_csv(data, max_rows, layout)
    if fmt == "xlsx":
        return _read_xlsx(data, max_rows, max_unpacked, layout)
    if fmt == "xml":
        return _read_xml(data, max_rows, layout)
    raise FileError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def _check_header(header: list[str], where: str, layout: Layout = METERS) -> list[str]:
    names = [str(h or "").strip().lower() for h in header]
    unknown = [n or "(empty)" for n in names if n not in layout.by_name]
    if unknown:
        raise FileError(f"{where}: unknown column(s): {', '.join(unknown)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FileError(f"{where}: duplicate column(s): {', '.join(duplicates)}")
    missing = [n for n in layout.required if n not in names]
    if missing:
        raise FileError(f"{where}: missing required column(s): {', '.join(missing)}")
    return names


def _too_many(max_rows: int, layout: Layout = METERS) -> FileError:
    return FileError(f"the file has more than {max_rows} {layout.plural}; split it")


def _cells(names: list[str], row) -> dict[str, Any]:
    """A row's cells by column; a short row's missing cells are empty, as a spreadsheet
    program writes them (they are then refused by the column's own rules, row by row)."""
    values = dict(zip(names, row, strict=False))
    for name in names[len(values) :]:
        values[name] = ""
    return values


def _is_blank(cells: Iterable[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


# --- CSV -----------------------------------------------------------------------------------


def _read_csv(data: bytes, max_rows: int, layout: Layout = METERS) -> Iterator[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(
            f"the CSV file is not UTF-8 text (invalid byte at position {exc.start}); "
            "save it as 'CSV UTF-8'"
        ) from None
    if "\x00" in text:
        raise FileError("the CSV file contains NUL bytes: is it really a CSV file?")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or _is_blank(header):
            raise FileError("the CSV file is empty: the first line must name the columns")
        names = _check_header(header, "header line", layout)
        count = 0
        for row in reader:
            if _is_blank(row):
                continue
            if count >= max_rows:
                raise _too_many(max_rows, layout)
            if len(row) > len(names):
                extra = row[len(names) :]
                if not _is_blank(extra):
                    raise FileError(
                        f"line {reader.line_num}: {len(row)} cells but only {len(names)} columns"
                    )
            count += 1
            yield Record(reader.line_num, _cells(names, row))
    except csv.Error as exc:
        raise FileError(f"line {reader.line_num}: not valid CSV ({exc})") from None


def csv_stream(meters: Iterable, layout: Layout = METERS) -> Iterator[str]:
    # A BOM so spreadsheet programs open it as UTF-8; the import accepts it.
    columns = layout.export_columns
    yield "\ufeff" + csv_line([c.name for c in columns])
    for meter in meters:
        yield csv_line(
            [value_text(layout.value(meter, c), c, guard_formulas=True) for c in columns]
        )


# --- XLSX ----------------------------------------------------------------------------------


def _read_xlsx(
    data: bytes, max_rows: int, max_unpacked: int, layout: Layout = METERS
) -> Iterator[Record]:
    from openpyxl import load_workbook

    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        raise FileError("not an XLSX file (it is not a zip archive)")
    try:
        with zipfile.ZipFile(buffer) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > max_unpacked:
                raise FileError(f"the XLSX file unpacks to more than {max_unpacked} bytes")
            if "xl/workbook.xml" not in archive.namelist():
                raise FileError("not an XLSX file (no workbook inside the zip archive)")
        buffer.seek(0)
        book = load_workbook(buffer, read_only=True, data_only=True)
    except FileError:
        raise
    except Exception as exc:  # openpyxl raises many types for broken files
        raise FileError(f"cannot read the XLSX file: {exc.__class__.__name__}: {exc}") from None
    try:
        sheet = book[layout.sheet] if layout.sheet in book.sheetnames else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if not header or _is_blank(header):
            raise FileError(f"sheet {sheet.title!r} is empty: row 1 must name the columns")
        header = list(header)
        while header and header[-1] in (None, ""):
            header.pop()
        names = _check_header(header, f"sheet {sheet.title!r} row 1", layout)
        count = 0
        for number, row in enumerate(rows, start=2):
            if _is_blank(row):
                continue
            if count >= max_rows:
                raise _too_many(max_rows, layout)
            if len(row) > len(names) and not _is_blank(row[len(names) :]):
                raise FileError(f"row {number}: values in columns without a header")
            count += 1
            yield Record(number, _cells(names, row))
    except FileError:
        raise
    except GeneratorExit:
        raise
    except Exception as exc:
        raise FileError(f"cannot read the XLSX file: {exc.__class__.__name__}: {exc}") from None
    finally:
        book.close()


def xlsx_write(meters: Iterable, target, layout: Layout = METERS) -> int:
    """Write the workbook (openpyxl write-only mode) to a binary file; returns the row count."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(layout.sheet)
    sheet.append(xlsx_row([c.name for c in layout.export_columns]))
    count = 0
    for meter in meters:
        row = []
        for column in layout.export_columns:
            value = _xlsx_value(meter, column, layout)
            if isinstance(value, date):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "yyyy-mm-dd"
                row.append(cell)
            else:
                row.append(value)
        sheet.append(xlsx_row(row))
        count += 1
    book.save(target)
    return count


def _xlsx_value(meter, column, layout: Layout = METERS):
    value = layout.value(meter, column)
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value  # xlsx_row guards text a spreadsheet would run


# --- XML -----------------------------------------------------------------------------------


class _LineParser(DefusedXMLParser):
    """defusedxml's parser (no DTDs, entities or external references) noting element lines."""

    def __init__(self):
        super().__init__(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        self.row_lines: list[int] = []
        self.depth = 0

    def _start(self, tag, attr_list):
        self.depth += 1
        if self.depth == 2:
            self.row_lines.append(self.parser.CurrentLineNumber)
        return super()._start(tag, attr_list)

    def _end(self, tag):
        self.depth -= 1
        return super()._end(tag)


def _read_xml(data: bytes, max_rows: int, layout: Layout = METERS) -> Iterator[Record]:
    # The element tree is built whole (defusedxml parses in one go); the records are not.
    parser = _LineParser()
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as exc:
        raise FileError(
            f"the XML file declares a DTD or entities, which are refused ({exc.__class__.__name__})"
        ) from None
    except (ParseError, ExpatError) as exc:
        raise FileError(f"not well-formed XML: {exc}") from None
    root_name, row_name = layout.xml_root, layout.xml_row
    if _local(root.tag) != root_name:
        raise FileError(f"the XML root element must be <{root_name}>, not <{_local(root.tag)}>")
    for index, (element, line) in enumerate(zip(root, parser.row_lines, strict=False), start=1):
        if _local(element.tag) != row_name:
            raise FileError(f"line {line}: expected <{row_name}>, found <{_local(element.tag)}>")
        if index > max_rows:
            raise _too_many(max_rows, layout)
        values: dict[str, Any] = {}
        for child in element:
            name = _local(child.tag)
            if name not in layout.by_name:
                raise FileError(f"{row_name} #{index} (line {line}): unknown element <{name}>")
            if name in values:
                raise FileError(f"{row_name} #{index} (line {line}): <{name}> given twice")
            if len(child):
                raise FileError(f"{row_name} #{index} (line {line}): <{name}> must hold only text")
            values[name] = child.text or ""
        missing = [n for n in layout.required if n not in values]
        if missing:
            raise FileError(
                f"{row_name} #{index} (line {line}): missing required element(s) "
                + ", ".join(f"<{n}>" for n in missing)
            )
        yield Record(line, values, index, row_name)


def _local(tag) -> str:
    return str(tag).rsplit("}", 1)[-1]


def xml_stream(meters: Iterable, layout: Layout = METERS) -> Iterator[str]:
    root_name, row_name = layout.xml_root, layout.xml_row
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<{root_name} version="1">\n'
    for meter in meters:
        parts = [f"  <{row_name}>\n"]
        for column in layout.export_columns:
            text = value_text(layout.value(meter, column), column, guard_formulas=False)
            if text == "" and column.kind != TEXT:
                parts.append(f"    <{column.name}/>\n")
            else:
                parts.append(f"    <{column.name}>{escape(_xml_safe(text))}</{column.name}>\n")
        parts.append(f"  </{row_name}>\n")
        yield "".join(parts)
    yield f"</{root_name}>\n"


def _xml_safe(text: str) -> str:
    # Control characters other than tab/newline cannot appear in XML 1.0 at all.
    return "".join(ch for ch in text if ch >= " " or ch in "\t\n\r")
