"""A DLMS data concentrator's own data: the meters it reports and the copy it collected of
each (layout: :mod:`.dc_layout`).

:func:`read_meter_list` reads the meter list (the concentrator probe, and
``DlmsSession.read_devices``). :class:`ConcentratorDataSession` is one meter's session in
the concentrator's own-data read mode: one association with the concentrator's management
logical device (its address and security, not the meter's), the meter found on its channel
by serial (the channel the last probe saw is only a hint: a concentrator that renumbered its
meters is asked for its list again, and a channel holding another serial is never read as
this meter), then the meter's registers, load profile and events read on that channel and
handed back under the meter's own OBIS codes, so the core stores them as it stores the
meter's own answers. Registers are as of the copy's collection time (``as_of``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from meters import obis as obis_codes

from .. import base
from ..errors import MalformedResponse, NotSupported, ProtocolError, UnknownDevice
from . import axdr
from . import dc_layout as L
from .client import DlmsClient
from .cosem import guess_class
from .gurux_compat import CLASS_DATA, CLASS_EXTENDED_REGISTER, CLASS_REGISTER


async def read_meter_list(client: DlmsClient) -> list[base.ReportedDevice]:
    """The meters the concentrator reports (NotSupported when it keeps no list)."""
    raw = await client.get_value(CLASS_DATA, obis_codes.dotted(L.METER_LIST), 2)
    if not isinstance(raw, list):
        raise MalformedResponse("the concentrator's meter list is not an array")
    found = []
    for item in raw:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], int)
            and 1 <= item[0] <= L.MAX_CHANNEL
            and isinstance(item[1], bytes)
            and (item[2] is None or (isinstance(item[2], bytes) and len(item[2]) == 12))
        ):
            raise MalformedResponse("invalid entry in the concentrator's meter list")
        try:
            serial = item[1].decode("ascii").strip()
        except UnicodeDecodeError:
            raise MalformedResponse("a serial in the meter list is not ASCII") from None
        last = axdr.decode_datetime(item[2]) if item[2] is not None else None
        found.append(base.ReportedDevice(serial, item[0], last))
    return found


class ConcentratorDataSession(DlmsClient):
    """One meter's data as its concentrator collected it (settings ``dc_serial`` set)."""

    capabilities = frozenset({base.READ_REGISTERS, base.READ_LOAD_PROFILE, base.READ_EVENTS})

    def __init__(self, settings, counter_store=None) -> None:
        if not settings.dc_serial:
            raise ValueError("a concentrator data session needs the meter's serial (dc_serial)")
        super().__init__(settings, counter_store)
        self.channel: int | None = None
        self.as_of: datetime | None = None

    async def open(self) -> None:
        await super().open()
        try:
            await self._call(self._find_meter)
        except BaseException:
            await self.close()
            raise

    async def _find_meter(self) -> None:
        wanted = self.settings.dc_serial
        hint = self.settings.dc_channel
        if hint and await self._take(hint):
            return
        for entry in await read_meter_list(self):
            if entry.serial == wanted and entry.channel != hint and await self._take(entry.channel):
                return
        raise UnknownDevice(f"the concentrator does not report meter {wanted}")

    async def _take(self, channel: int) -> bool:
        """Is the meter on `channel`? If so, read from there from now on."""
        raw_serial, raw_at = await self.get_many(
            [
                (CLASS_DATA, obis_codes.dotted(L.device_id(channel)), 2),
                (CLASS_DATA, obis_codes.dotted(L.collected_at(channel)), 2),
            ]
        )
        if isinstance(raw_serial, ProtocolError):
            if isinstance(raw_serial, NotSupported):
                return False  # nothing on that channel (any more)
            raise raw_serial
        serial = axdr.decode_all(raw_serial)
        if (
            not isinstance(serial, bytes)
            or serial.decode("ascii", "replace") != self.settings.dc_serial
        ):
            return False
        at = axdr.decode_all(raw_at) if isinstance(raw_at, bytes) else None
        if not isinstance(at, bytes) or len(at) != axdr.DATETIME_LEN:
            raise MalformedResponse(f"no collection time on channel {channel}")
        self.channel, self.as_of = channel, axdr.decode_datetime(at)
        return True

    # ------------------------------------------------------------ names on the channel
    def _on(self, name: str) -> str:
        code = obis_codes.parse(name)
        if code.b != 0:
            raise NotSupported(f"{name}: only channel 0 codes have a copy at the concentrator")
        return obis_codes.normalise(L.on_channel(bytes(code), self.channel))

    def _off(self, name: str) -> str:
        return obis_codes.normalise(L.off_channel(obis_codes.to_bytes(name), self.channel))

    def _register_classes(self, name: str) -> list[int]:
        # Copies are extended registers (capture time: the collection time).
        return [CLASS_EXTENDED_REGISTER, CLASS_REGISTER, CLASS_DATA]

    async def _read_registers(self, obis: list[str]) -> list[base.RegisterValue]:
        names = [obis_codes.normalise(o) for o in obis]
        wanted: dict[str, str] = {}
        refused: dict[str, str] = {}
        for name in names:
            try:
                wanted[self._on(name)] = name
            except NotSupported as exc:
                refused[name] = str(exc)
        values = {v.obis: v for v in await super()._read_registers(list(wanted))} if wanted else {}
        out = []
        for name in names:
            if name in refused:
                out.append(
                    base.RegisterValue(obis=name, value=None, unit=None, error=refused[name])
                )
                continue
            value = values[self._on(name)]
            own_class = guess_class(name)
            # A copy's capture time is when it was collected (as_of, the read's time); only
            # a maximum demand's is a time of its own.
            capture = value.capture_time if own_class == CLASS_EXTENDED_REGISTER else None
            out.append(replace(value, obis=name, capture_time=capture))
        return out

    async def _read_load_profile(self, profile: str, start: datetime, end: datetime):
        block = await super()._read_load_profile(self._on(profile), start, end)
        channels = tuple(replace(c, obis=self._off(c.obis)) for c in block.channels)
        return replace(block, profile=self._off(block.profile), channels=channels)

    async def _read_events(self, log: str, start: datetime, end: datetime):
        name = obis_codes.normalise(log)
        events = await super()._read_events(self._on(name), start, end)
        return [replace(e, log=name) for e in events]


__all__ = ["ConcentratorDataSession", "read_meter_list"]
