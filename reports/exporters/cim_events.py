"""IEC 61968-9 (CIM) `EndDeviceEvents` documents, streamed: the event logs of the meters in
the reader's scope over a period (`/reports/events/cim.xml`, docs/api.md).

One `EndDeviceEvent` per stored event: its time (`createdDateTime`), its type, the reason
(the event kind's label), the meter (`Assets/mRID` = serial) and its service point
(`UsagePoint/mRID`), and `EndDeviceEventDetails` with the meter's own log (OBIS) and code.
The type is the standard's EndDeviceEventType code (EndDeviceType.EndDeviceDomain.
EndDeviceSubdomain.EndDeviceEventOrAction) where a published code for the kind was found
(`EVENT_TYPES`, with its source in docs/api.md "EndDeviceEventType codes"); every other
kind keeps `ami:<kind>` (our `EventKind`, from the model's event table).
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.sax.saxutils import escape

from meters.alarms.events import EventKind, kind_of, label
from meters.store import EventRecord

NAMESPACE = "http://iec.ch/TC57/2011/EndDeviceEvents#"
HEADER = f'<?xml version="1.0" encoding="UTF-8"?>\n<EndDeviceEvents xmlns="{NAMESPACE}">\n'
FOOTER = "</EndDeviceEvents>\n"
CHUNK = 2000

# EventKind -> IEC 61968-9 EndDeviceEventType. EndDeviceType 3 = ElectricMeter (Annex E,
# table E.1); domain.subdomain.eventOrAction as the open-source Connexo MDM's CIM event
# type factory and enumerations publish them (docs/api.md lists the names and the source).
K = EventKind
EVENT_TYPES = {
    K.POWER_FAILURE: "3.26.38.85",  # Power.Voltage.Failed (power down)
    K.POWER_RESTORED: "3.26.38.49",  # Power.Voltage.Re-established (power up)
    K.COVER_OPEN: "3.12.141.212",  # Security.(meter cover).Removed
    K.COVER_CLOSED: "3.12.141.16",  # Security.(meter cover).Closed
    K.TERMINAL_COVER_CLOSED: "3.12.29.16",  # Security.Cover.Closed
    K.MAGNETIC_TAMPER: "3.12.66.242",  # Security.MagneticSwitch.Started (strong DC field)
    K.MAGNETIC_TAMPER_END: "3.12.66.243",  # Security.MagneticSwitch.Stopped
    K.REVERSE_ENERGY: "3.12.6.219",  # Security.Current.Reversed (reverse run)
    K.VOLTAGE_SAG: "3.26.79.223",  # Power.PhaseVoltage.SagStarted
    K.VOLTAGE_SWELL: "3.26.79.248",  # Power.PhaseVoltage.SwellStarted
    K.PHASE_LOSS: "3.26.25.85",  # Power.Phase.Failed
    K.CLOCK_ADJUSTED: "3.36.116.13",  # Clock.TimeSync.Change (set clock)
    K.AUTHENTICATION_FAILURE: "3.12.24.85",  # Security.Password.Failed
}


def event_type(kind: str) -> str:
    """The kind's EndDeviceEventType code, or `ami:<kind>` where none is verified."""
    return EVENT_TYPES.get(kind, f"ami:{kind}")


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
        f'<EndDeviceEventType ref="{escape(event_type(kind))}"/>'
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
