"""IEC 61968-9 (CIM) `MeterReadings` documents, streamed: billing determinants (`meter_reading`)
and data-query readings (`readings_stream`, the data query's `cim` export format).

One `MeterReading` per meter: its `Meter` (mRID = serial), its `UsagePoint` (mRID = service
point code), the billing period as `valuesInterval`, and one `Readings` element per value:
the end-of-period register reads (bulk quantities), the period's consumption (delta data)
and the maximum demand with its time. A reading's type is named by its CIM ReadingType code
(`READING_TYPES`, from the register's OBIS code; an unlisted code is named `obis:<code>`); an
estimated or substituted read carries a `ReadingQualities` element. Values are exact
decimals in the register's unit (the ReadingType's unit of measure). The layout is in
docs/api.md ("CIM MeterReadings export").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import groupby
from xml.sax.saxutils import escape

from meters.obis import parse as parse_obis
from meters.store.quality import Quality

from .rows import Progress, counted, local_time

NAMESPACE = "http://iec.ch/TC57/2011/MeterReadings#"
# OBIS -> CIM ReadingType (macroPeriod.aggregate.measuringPeriod.accumulation.flowDirection.
# commodity.measurementKind.interharmonic(2).argument(2).TOU.CPP.consumptionTier.phases.
# multiplier.uom.currency): bulk (1) or delta (4) energy (12) in Wh (72), forward (1) or
# reverse (19); maximum (8) demand (8) in W (38); TOU = the OBIS rate.
READING_TYPES = {
    "1-0:1.8.0*255": "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0",
    "1-0:1.8.1*255": "0.0.0.1.1.1.12.0.0.0.0.1.0.0.0.0.72.0",
    "1-0:1.8.2*255": "0.0.0.1.1.1.12.0.0.0.0.2.0.0.0.0.72.0",
    "1-0:2.8.0*255": "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.72.0",
    "1-0:3.8.0*255": "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.73.0",
    "1-0:4.8.0*255": "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.73.0",
    "1-0:1.6.0*255": "0.8.0.6.1.1.8.0.0.0.0.0.0.0.0.0.38.0",
}
ESTIMATED_QUALITY, SUBSTITUTED_QUALITY = "2.8.0", "2.7.0"  # projected / manually edited


def reading_type(obis: str, *, delta: bool = False) -> str:
    code = READING_TYPES.get(obis)
    if code is None:
        return f"obis:{obis}"
    if delta:  # accumulation 4: the period's consumption
        parts = code.split(".")
        parts[3] = "4"
        return ".".join(parts)
    return code


def _reading(ref: str, at: datetime | None, value, quality: str = "") -> str:
    parts = [f'<Readings><ReadingType ref="{escape(ref)}"/>']
    if quality:
        parts.append(f'<ReadingQualities><ReadingQualityType ref="{quality}"/></ReadingQualities>')
    if at is not None:
        parts.append(f"<timeStamp>{at.isoformat()}</timeStamp>")
    parts.append(f"<value>{value}</value></Readings>")
    return "".join(parts)


def _quality(read_class: str) -> str:
    return {"estimated": ESTIMATED_QUALITY, "substituted": SUBSTITUTED_QUALITY}.get(read_class, "")


def meter_reading(result, period, *, held: bool = False) -> str:
    """One meter's `MeterReading` element (`result`: billing.MeterDeterminants; the billing export
    writes the document, `billing.write_export`)."""
    meter = result.meter
    point = meter.service_point.code if meter.service_point_id else ""
    held_name = (
        "<Names><name>held</name><NameType><name>billing-status</name></NameType></Names>"
        if held
        else ""
    )
    out = [
        f"<MeterReading><Meter><mRID>{escape(meter.serial)}</mRID>{held_name}</Meter>",
        f"<UsagePoint><mRID>{escape(point)}</mRID></UsagePoint>",
        f"<valuesInterval><start>{period.start.isoformat()}</start>"
        f"<end>{period.end.isoformat()}</end></valuesInterval>",
    ]
    for row in result.rows:
        if row["end_value"] is not None:
            at = row["demand_at"] or row["end_at"]
            out.append(
                _reading(
                    reading_type(row["obis"]), at, row["end_value"], _quality(row["end_class"])
                )
            )
        if row["consumption"] is not None:
            quality = ESTIMATED_QUALITY if row["source"] == "interval sum" else ""
            out.append(
                _reading(
                    reading_type(row["obis"], delta=True), period.end, row["consumption"], quality
                )  # fmt: skip
            )
    out.append("</MeterReading>\n")
    return "".join(out)


HEADER = f'<?xml version="1.0" encoding="UTF-8"?>\n<MeterReadings xmlns="{NAMESPACE}">\n'
FOOTER = "</MeterReadings>\n"


# query resolution -> CIM measuringPeriod (raw profiles are taken to be 15-minute)
MEASURING_PERIODS = {"raw": "2", "hour": "7", "day": "11", "month": "13"}
BATCH = 500


def series_type(obis: str, resolution: str) -> str:
    """The ReadingType of a data-query series: a profile channel (D = 29) is the register's
    quantity as delta data over the resolution's period; a register keeps its own code."""
    try:
        code = parse_obis(obis)
    except ValueError:
        return f"obis:{obis}"
    if code.d != 29:
        return reading_type(obis)
    register = f"{code.a}-{code.b}:{code.c}.8.{code.e}*255"
    if register not in READING_TYPES:
        return f"obis:{obis}"
    parts = reading_type(register, delta=True).split(".")
    parts[2] = MEASURING_PERIODS.get(resolution, "0")
    return ".".join(parts)


def _row_quality(flags: int) -> str:
    if flags & Quality.EDITED:
        return SUBSTITUTED_QUALITY
    if flags & Quality.ESTIMATED:
        return ESTIMATED_QUALITY
    return ""


def readings_stream(query, title: str = "", progress: Progress = None) -> Iterator[bytes]:
    """A data query's rows as `MeterReading`s: one per (meter, channel) with one
    `IntervalBlock` (its ReadingType from `series_type`); a row without a value is left
    out (CIM readers take absence as missing)."""
    yield HEADER.encode()
    rows = counted(query.rows(), progress)
    for (serial, obis), group in groupby(rows, key=lambda r: (r.serial, r.obis)):
        parts = [
            f"<MeterReading><Meter><mRID>{escape(serial)}</mRID></Meter><IntervalBlocks>"
            f'<ReadingType ref="{escape(series_type(obis, query.resolution))}"/>\n'
        ]
        for row in group:
            if row.value is None:
                continue
            quality = _row_quality(row.flags)
            parts.append(
                "<IntervalReadings>"
                + (f'<ReadingQualities><ReadingQualityType ref="{quality}"/></ReadingQualities>'
                   if quality else "")
                + f"<timeStamp>{local_time(row)}</timeStamp><value>{row.value}</value>"
                "</IntervalReadings>\n"
            )  # fmt: skip
            if len(parts) >= BATCH:
                yield "".join(parts).encode()
                parts = []
        parts.append("</IntervalBlocks></MeterReading>\n")
        yield "".join(parts).encode()
    yield FOOTER.encode()
