"""Meter master data as IEC 61968-9 `MeterConfig` documents: written from the meters of a
scope (`stream`), and read back into the registry importer's records (`read`).

The profile (`MeterConfig.xsd` beside this file; docs/api.md "File exchange") maps:

    Meter/mRID, serialNumber            serial (mRID, when given, must equal serialNumber)
    Meter/amrSystem                      protocol (dlms, iec62056_21, iec870_102, modbus)
    lifecycle/installationDate           install date
    status/value                         status (in_stock, installed, active, faulty, removed)
    ComFunction/amrAddress               host:port of a meter read over TCP ([v6]:port)
    ComFunction/amrRouter                data concentrator serial
    EndDeviceInfo/phaseCount             phases (1 or 3)
    EndDeviceInfo/AssetModel/modelNumber meter model name
      .../Manufacturer/Names/name        its manufacturer
    Location/PositionPoints x / y        longitude / latitude
    MeterMultipliers kind ctRatio/ptRatio  CT and VT ratios
    SimpleEndDeviceFunction/firmwareID   firmware
    UsagePoints/mRID                     service point code

Reading is two gates before any row is looked at: defusedxml parses the bytes (no DTD,
no entities, no external references: an XML bomb is refused), then lxml checks the tree
against the schema with line numbers. A file that passes becomes `Record`s of registry
columns, which `meters.registry_io.import_records` validates and applies all or none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.parsers.expat import ExpatError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from lxml import etree

from meters.registry_io import FileError, Record
from meters.registry_io.columns import BY_NAME, value_text

NAMESPACE = "http://iec.ch/TC57/2011/MeterConfig#"
SCHEMA_PATH = Path(__file__).with_name("MeterConfig.xsd")
HEADER = f'<?xml version="1.0" encoding="UTF-8"?>\n<MeterConfig xmlns="{NAMESPACE}">\n'
FOOTER = "</MeterConfig>\n"
COLUMNS = ("serial", "manufacturer", "model", "firmware", "phases", "ct_ratio", "vt_ratio",
           "install_date", "status", "service_point", "concentrator", "latitude", "longitude",
           "protocol", "host", "port")  # fmt: skip
MULTIPLIERS = {"ctRatio": "ct_ratio", "ptRatio": "vt_ratio"}

_schema = None


def schema() -> etree.XMLSchema:
    global _schema
    if _schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        _schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH), parser))
    return _schema


# --- writing -------------------------------------------------------------------------------


def _text(meter, name: str) -> str:
    column = BY_NAME[name]
    value = getattr(meter, column.field) if column.field else None
    return value_text(value, column, guard_formulas=False)


def _e(text: str) -> str:
    return escape("".join(ch for ch in text if ch >= " " or ch in "\t\n\r"))


def _address(meter) -> str:
    if meter.transport != "tcp" or not meter.host or not meter.port:
        return ""
    host = f"[{meter.host}]" if ":" in meter.host else meter.host
    return f"{host}:{meter.port}"


def meter_element(meter) -> str:
    """One `<Meter>` (select_related meter_model, service_point, concentrator, endpoint)."""
    serial = _e(meter.serial)
    out = [f"  <Meter><mRID>{serial}</mRID><amrSystem>{_e(meter.protocol)}</amrSystem>"
           f"<serialNumber>{serial}</serialNumber>"]  # fmt: skip
    if meter.install_date:
        out.append(
            f"<lifecycle><installationDate>{meter.install_date.isoformat()}"
            "</installationDate></lifecycle>"
        )
    out.append(f"<status><value>{_e(meter.status)}</value></status>")
    address = _address(meter)
    if address or meter.concentrator_id:
        out.append("<ComFunction>")
        if address:
            out.append(f"<amrAddress>{_e(address)}</amrAddress>")
        if meter.concentrator_id:
            out.append(f"<amrRouter>{_e(meter.concentrator.serial)}</amrRouter>")
        out.append("</ComFunction>")
    model = meter.meter_model
    out.append(
        f"<EndDeviceInfo><phaseCount>{meter.phases}</phaseCount><AssetModel>"
        f"<modelNumber>{_e(model.name)}</modelNumber><Manufacturer><Names>"
        f"<name>{_e(model.manufacturer)}</name></Names></Manufacturer></AssetModel>"
        "</EndDeviceInfo>"
    )
    if meter.latitude is not None and meter.longitude is not None:
        out.append(
            f"<Location><PositionPoints><xPosition>{_text(meter, 'longitude')}</xPosition>"
            f"<yPosition>{_text(meter, 'latitude')}</yPosition></PositionPoints></Location>"
        )
    for kind, name in MULTIPLIERS.items():
        if getattr(meter, name) is not None:
            out.append(
                f"<MeterMultipliers><kind>{kind}</kind>"
                f"<value>{_text(meter, name)}</value></MeterMultipliers>"
            )
    if meter.firmware:
        out.append(
            f"<SimpleEndDeviceFunction><firmwareID>{_e(meter.firmware)}</firmwareID>"
            "</SimpleEndDeviceFunction>"
        )
    if meter.service_point_id:
        out.append(f"<UsagePoints><mRID>{_e(meter.service_point.code)}</mRID></UsagePoints>")
    out.append("</Meter>\n")
    return "".join(out)


def stream(meters: Iterable, progress=None) -> Iterator[bytes]:
    """A MeterConfig document of `meters` (a scoped, ordered queryset), in chunks."""
    yield HEADER.encode()
    parts: list[str] = []
    for meter in meters:
        parts.append(meter_element(meter))
        if progress is not None:
            progress(1)
        if len(parts) >= 500:
            yield "".join(parts).encode()
            parts = []
    yield ("".join(parts) + FOOTER).encode()


# --- reading -------------------------------------------------------------------------------


@dataclass
class Problem:
    line: int | None
    where: str
    message: str


def _local(tag) -> str:
    return str(tag).rsplit("}", 1)[-1]


def check(data: bytes) -> tuple[etree._Element | None, list[Problem]]:
    """The parsed root, or the problems that refuse the whole file (not XML, a DTD or an
    entity, not valid against the schema: every schema error, with its line)."""
    try:
        defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        return None, [Problem(None, "file", "the file declares a DTD or entities, which are "
                              f"refused ({exc.__class__.__name__})")]  # fmt: skip
    except (SyntaxError, ExpatError, ValueError) as exc:  # ParseError is a SyntaxError
        return None, [Problem(getattr(exc, "lineno", None), "file", f"not well-formed XML: {exc}")]
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return None, [Problem(exc.lineno, "file", f"not well-formed XML: {exc}")]
    validator = schema()
    if not validator.validate(root):
        problems = []
        for error in validator.error_log:
            problems.append(Problem(error.line, _meter_of(error.path), f"schema: {error.message}"))
        return None, problems
    return root, []


def _meter_of(path: str | None) -> str:
    """'Meter #n' from an lxml error path (/*/*[n]/...), else 'MeterConfig'."""
    match = re.match(r"/\*/\*(?:\[(\d+)\])?", path or "")
    return f"Meter #{match.group(1) or 1}" if match else "MeterConfig"


def _find(element, path: str):
    """The text at a '/'-separated path of local names below `element`, or None."""
    ns = f"{{{NAMESPACE}}}"
    found = element.find("/".join(ns + part for part in path.split("/")))
    return None if found is None else (found.text or "")


def records(root) -> Iterator[Record]:
    """The `Record`s (registry columns) of a schema-valid MeterConfig tree."""
    for index, meter in enumerate(root, start=1):
        values: dict[str, str] = {}
        serial = _find(meter, "serialNumber")
        values["serial"] = serial
        mrid = _find(meter, "mRID")
        if mrid is not None and mrid != serial:
            raise FileError(
                f"Meter #{index} (line {meter.sourceline}): mRID {mrid!r} is not its "
                f"serialNumber {serial!r}"
            )
        simple = {
            "protocol": "amrSystem",
            "install_date": "lifecycle/installationDate",
            "status": "status/value",
            "concentrator": "ComFunction/amrRouter",
            "phases": "EndDeviceInfo/phaseCount",
            "model": "EndDeviceInfo/AssetModel/modelNumber",
            "manufacturer": "EndDeviceInfo/AssetModel/Manufacturer/Names/name",
            "longitude": "Location/PositionPoints/xPosition",
            "latitude": "Location/PositionPoints/yPosition",
            "firmware": "SimpleEndDeviceFunction/firmwareID",
            "service_point": "UsagePoints/mRID",
        }
        for column, path in simple.items():
            text = _find(meter, path)
            if text is not None:
                values[column] = text
        address = _find(meter, "ComFunction/amrAddress")
        if address is not None:
            host, _, port = address.rpartition(":")
            values["host"], values["port"] = host.strip("[]"), port
        for multiplier in meter.iterfind(f"{{{NAMESPACE}}}MeterMultipliers"):
            column = MULTIPLIERS[_find(multiplier, "kind")]
            if column in values:
                raise FileError(
                    f"Meter #{index} (line {multiplier.sourceline}): two {column} multipliers"
                )
            values[column] = _find(multiplier, "value")
        yield Record(meter.sourceline, values, index, "Meter")
