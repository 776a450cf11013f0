"""The DLMS session the driver opens: the client plus the command side it lacks.

``DlmsClient`` (:mod:`.client`) reads, sets the clock, switches the relay (disconnect
control, class 70), writes the activity calendar (class 20) and reconfigures load profiles
(class 7). :mod:`.configuration` adds the limiter (class 71), special days (class 11), the
clock's time zone and DST rules and the read-backs; :mod:`.communication` the modem's APN,
IP setup, listening port, connection mode and the alarm filters; this adds the push setup
(class 40): where the meter sends its pushes.
"""

from __future__ import annotations

from meters import obis as obis_codes

from .. import base
from ..errors import MalformedResponse
from . import axdr
from .client import DlmsClient
from .communication import DlmsCommunication
from .concentrator import read_meter_list
from .configuration import DlmsConfiguration

CLASS_PUSH_SETUP = 40
PUSH_SETUP = "0.0.25.9.0.255"  # IDIS push setup 1 (alarms / data notifications)
PUSH_OBJECT_LIST = 2
PUSH_DESTINATION = 3
TRANSPORT_TCP = 0  # send_destination_and_method.transport: TCP
MESSAGE_APDU = 0  # ... .message: A-XDR encoded xDLMS APDU


class DlmsSession(DlmsCommunication, DlmsConfiguration, DlmsClient):
    """One DLMS/COSEM association with the whole contract the simulated meter supports."""

    # READ_DEVICES: a concentrator's own logical device lists its meters (a meter answers
    # "object undefined", NotSupported).
    capabilities = base.ALL_CAPABILITIES | {base.READ_DEVICES}

    async def read_devices(self) -> list[base.ReportedDevice]:
        return await self._call(read_meter_list, self)

    async def _write_tou(self, cal: base.TouCalendar, activate_at) -> None:
        await super()._write_tou(cal, activate_at)
        await self._write_special_days(cal.special_days)

    async def read_push_setup(self, setup: str | None = None) -> base.PushSetup:
        return await self._call(self._read_push_setup, obis_codes.dotted(setup or PUSH_SETUP))

    async def set_push_destination(
        self, destination: str, setup: str | None = None
    ) -> base.PushSetup:
        host, _, port = destination.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"push destination must be host:port, not {destination!r}")
        return await self._call(self._set_push_destination, destination, setup)

    async def _set_push_destination(self, destination: str, setup: str | None):
        ln = obis_codes.dotted(setup or PUSH_SETUP)
        value = axdr.enc_struct(
            axdr.enc_enum(TRANSPORT_TCP),
            axdr.enc_octets(destination.encode("ascii")),
            axdr.enc_enum(MESSAGE_APDU),
        )
        await self.set_value(CLASS_PUSH_SETUP, ln, PUSH_DESTINATION, value)
        return await self._read_push_setup(ln)

    async def _read_push_setup(self, ln: str) -> base.PushSetup:
        objects = await self.get_value(CLASS_PUSH_SETUP, ln, PUSH_OBJECT_LIST)
        target = await self.get_value(CLASS_PUSH_SETUP, ln, PUSH_DESTINATION)
        if not isinstance(objects, list) or not isinstance(target, list) or len(target) != 3:
            raise MalformedResponse("push setup: unexpected object list or destination")
        try:
            pushed = tuple(obis_codes.normalise(item[1]) for item in objects)
            destination = bytes(target[1]).decode("ascii")
        except (TypeError, IndexError, ValueError, UnicodeDecodeError):
            raise MalformedResponse("push setup: unexpected object list or destination") from None
        return base.PushSetup(
            setup=obis_codes.normalise(ln), destination=destination, objects=pushed
        )
