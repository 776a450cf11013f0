"""IEC 61968-9 (CIM) `EndDeviceEvents` documents, streamed: the event logs of the meters in
the reader's scope over a period (`/reports/events/cim.xml`, docs/api.md).

One `EndDeviceEvent` per stored event: its time (`createdDateTime`), its type, the reason
(the event kind's label), the meter (`Assets/mRID` = serial) and its service point
(`UsagePoint/mRID`), and `EndDeviceEventDetails` with the meter's own log (OBIS) and code.
The type is named `ami:<kind>` (our `EventKind`, from the model's event table): the
standard's EndDeviceEventType enumeration (deviceType.domain.subDomain.eventOrAction) is
not mapped yet, so a receiver maps the kinds, which are listed in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.sax.saxutils import escape

from meters.alarms.events import kind_of, label
from meters.store import EventRecord

NAMESPACE = "http://iec.ch/TC57/2011/EndDeviceEvents#"
HEADER = f'<?xml version="1.0" encoding="UTF-8"?>\n<EndDeviceEvents xmlns="{NAMESPACE}">\n'
FOOTER = "</EndDeviceEvents>\n"
CHUNK = 2000


def _detail(name: str, value) -> str:
    return (
        f"<EndDeviceEventDetails><name>{escape(name)}</name>"
        f"<value>{escape(str(value))}</value></EndDeviceEventDetails>"
    )


def event_element(meter, event) -> str:
    kind = kind_of(event.code, event.log, meter.meter_model)
    point = meter.service_point.code if meter.service_point_id else ""
    return (
        f"<EndDeviceEvent><createdDateTime>{event.ts.isoformat()}</createdDateTime>"
        f"<reason>{escape(label(kind))}</reason>"
        f'<EndDeviceEventType ref="ami:{escape(kind)}"/>'
        f"<Assets><mRID>{escape(meter.serial)}</mRID></Assets>"
        f"<UsagePoint><mRID>{escape(point)}</mRID></UsagePoint>"
        f"{_detail('log', event.log)}{_detail('code', event.code)}</EndDeviceEvent>\n"
    )


def stream(meters, start, end) -> Iterator[bytes]:
    """The events of `meters` (scoped, ordered) with times in (start, end], meter by meter
    in chunks of meters: memory stays flat."""
    yield HEADER.encode()
    chunk = []

    def flush():
        by_id = {m.pk: m for m in chunk}
        events = EventRecord.objects.filter(
            meter_id__in=list(by_id), ts__gt=start, ts__lte=end
        ).order_by("meter_id", "ts", "log", "code")
        parts = [event_element(by_id[e.meter_id], e) for e in events.iterator(chunk_size=CHUNK)]
        chunk.clear()
        return "".join(parts).encode()

    for meter in meters.iterator(chunk_size=500):
        chunk.append(meter)
        if len(chunk) >= 500:
            yield flush()
    if chunk:
        yield flush()
    yield FOOTER.encode()
