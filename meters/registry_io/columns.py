"""The one column set of the meter registry file, shared by CSV, XLSX and XML.

Each `Column` knows how to read its value from a meter (export) and how to turn a cell into
a model value (import). Reference columns (meter model, service point, concentrator,
organisation) are resolved by the importer, which also applies scoping to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from amisite.tabular import guard, unguard

from ..choices import DlmsInterface, MeterStatus, Parity, Protocol, Security, Transport
from ..models import Endpoint, Meter, MeterEndpoint

# Cell types.
TEXT, INT, DECIMAL, DATE, ENUM, REF, SECRET = (
    "text", "int", "decimal", "date", "enum", "ref", "secret",
)  # fmt: skip


class CellError(ValueError):
    """A cell that cannot be turned into a value; the message names the problem."""


@dataclass(frozen=True)
class Column:
    name: str  # header in CSV/XLSX, element name in XML
    kind: str
    field: str = ""  # model field (attname for plain values); empty for references
    choices: type[models.TextChoices] | None = None
    required: bool = False  # must be present in the file and non-empty

    @property
    def exported(self) -> bool:
        return self.kind != SECRET

    def model_field(self):
        """The meter's or its endpoint's field; None for references and endpoint options."""
        for model in (Meter, MeterEndpoint):
            try:
                return model._meta.get_field(self.field) if self.field else None
            except FieldDoesNotExist:
                continue
        return None

    @property
    def blank_allowed(self) -> bool:
        field = self.model_field()
        return True if field is None else field.blank


def _c(name, kind, field=None, **extra) -> Column:
    return Column(name, kind, name if field is None else field, **extra)


COLUMNS: list[Column] = [
    _c("serial", TEXT, required=True),
    _c("manufacturer", REF, "", required=True),
    _c("model", REF, "", required=True),
    _c("firmware", TEXT),
    _c("phases", INT),
    _c("ct_ratio", DECIMAL),
    _c("vt_ratio", DECIMAL),
    _c("install_date", DATE),
    _c("status", ENUM, choices=MeterStatus),
    _c("service_point", REF, ""),
    _c("concentrator", REF, ""),
    _c("organisation", REF, ""),
    _c("latitude", DECIMAL),
    _c("longitude", DECIMAL),
    _c("protocol", ENUM, choices=Protocol),
    _c("transport", ENUM, choices=Transport),
    _c("host", TEXT),
    _c("port", INT),
    _c("serial_url", TEXT),
    _c("baud_rate", INT),
    _c("data_bits", INT),
    _c("parity", ENUM, choices=Parity),
    _c("stop_bits", INT),
    _c("dlms_interface", ENUM, choices=DlmsInterface),
    _c("dlms_client_address", INT),
    _c("dlms_server_address", INT),
    _c("dlms_physical_address", INT),
    _c("modbus_unit_id", INT),
    _c("iec21_address", TEXT),
    _c("iec102_link_address", INT),
    _c("iec102_measuring_point", INT),
    _c("security", ENUM, choices=Security),
    _c("system_title", TEXT),
    _c("client_system_title", TEXT),
    _c("timeout_s", INT),
    _c("retries", INT),
    # Import only: never exported; an empty or missing cell keeps the stored secret.
    _c("password", SECRET),
    _c("auth_key", SECRET),
    _c("block_key", SECRET),
]
BY_NAME = {column.name: column for column in COLUMNS}
EXPORT_COLUMNS = [column for column in COLUMNS if column.exported]
REQUIRED = [column.name for column in COLUMNS if column.required]

# Text a spreadsheet would run as a formula is exported with a leading apostrophe
# (amisite/tabular.py), which the import removes again (so round trips are exact).


def export_value(meter: Meter, column: Column) -> Any:
    """The value of `column` for `meter` as a Python value (str, int, Decimal, date or None)."""
    name = column.name
    if name == "manufacturer":
        return meter.meter_model.manufacturer
    if name == "model":
        return meter.meter_model.name
    if name == "service_point":
        return meter.service_point.code if meter.service_point_id else ""
    if name == "concentrator":
        return meter.concentrator.serial if meter.concentrator_id else ""
    if name == "organisation":
        return meter.organisation.code
    return getattr(meter, column.field)


def export_text(meter: Meter, column: Column, *, guard_formulas: bool) -> str:
    """The value as text for CSV and XML; text cells guarded against formula injection."""
    return value_text(export_value(meter, column), column, guard_formulas=guard_formulas)


def value_text(value: Any, column: Column, *, guard_formulas: bool) -> str:
    """An exported value as text (any file layout); text cells guarded against formulas."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if guard_formulas and column.kind in (TEXT, REF):
        return guard(text)
    return text


def cell_text(value: Any) -> str:
    """Any cell (text from CSV/XML, typed from XLSX) as stripped text; None is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise CellError(f"unexpected true/false value {value!r}")
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise CellError(f"expected a date, got a date and time {value.isoformat()}")
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value).strip()


def parse_cell(column: Column, raw: Any) -> Any:
    """Turn one cell into the model value; '' for empty text, None for other empty cells."""
    text = cell_text(raw)
    if column.kind in (TEXT, REF):
        return unguard(text)
    if column.kind == SECRET:
        return text
    if text == "":
        return None
    if column.kind == INT:
        try:
            return int(text)
        except ValueError:
            raise CellError(f"{text!r} is not a whole number") from None
    if column.kind == DECIMAL:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise CellError(f"{text!r} is not a number") from None
        if not value.is_finite():
            raise CellError(f"{text!r} is not a number")
        places = column.model_field().decimal_places
        if value.as_tuple().exponent >= -places:
            value = value.quantize(Decimal(1).scaleb(-places))
        return value
    if column.kind == DATE:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise CellError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if column.kind == ENUM:
        for value in column.choices.values:
            if text.lower() == value.lower():
                return value
        allowed = ", ".join(column.choices.values)
        raise CellError(f"{text!r} is not one of: {allowed}")
    raise AssertionError(column.kind)


def default_for(column: Column) -> Any:
    """What an empty cell means for a plain field: the model default, or empty."""
    field = column.model_field()
    if field is None:  # an endpoint option
        return Endpoint.OPTION_FIELDS[column.field][0]
    if field.has_default():
        return field.get_default()
    return None if field.null else ""
