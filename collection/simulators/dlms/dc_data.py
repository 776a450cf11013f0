"""A simulated concentrator's own collected data (no Django): the objects of its management
logical device that hold the copy it collected of each meter (layout:
``protocols/dlms/dc_layout.py``).

The copy of meter ``i`` is the meter's own model as of the time the concentrator last
collected it (``Collector.collected_at``): registers are Extended Registers stamped with that
time, the load profile and event log end there. So what the head-end stores from the copy is
the same value the meter itself gives for those instants, and a meter read both ways gives
the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from ...protocols.dlms import axdr
from ...protocols.dlms import dc_layout as L
from ...protocols.dlms.axdr import Value
from .cosem_base import AccessError, CosemObject, Ctx, Data
from .meter import MeterState, SimulatedMeter
from .objects import OBJECTS, EventLog, LoadProfile, ProfileGeneric, Register, capture_object

CLOCK_CLASS = 8
EVENT_CODE = bytes((0, 0, 96, 11, 0, 255))


class Collector(Protocol):
    """What the objects need of the concentrator (``DlmsGateway``)."""

    def on_channel(self, channel: int) -> tuple[SimulatedMeter, MeterState] | None: ...

    def collected_at(self, channel: int, now: datetime) -> datetime: ...

    def meter_list(self, now: datetime) -> list[L.Entry]: ...


class MeterChannels:
    """A concentrator's meters on channels 1..n (a :class:`Collector`): meter ``indexes[k]``
    of a fleet on channel ``k + 1``, collected every `collect_period_s` (aligned)."""

    def __init__(self, meters, state_of, indexes, collect_period_s: int = 900) -> None:
        self.meters, self.state_of = meters, state_of
        self.indexes = list(indexes)[: L.MAX_CHANNEL]
        self.period = collect_period_s

    def on_channel(self, channel: int):
        if not 1 <= channel <= len(self.indexes):
            return None
        i = self.indexes[channel - 1]
        return self.meters[i], self.state_of(i)

    def collected_at(self, channel: int, now: datetime) -> datetime:
        at = int(now.timestamp()) // self.period * self.period
        return datetime.fromtimestamp(at, UTC)

    def meter_list(self, now: datetime) -> list[L.Entry]:
        return [
            L.Entry(channel, self.meters[i].serial, self.collected_at(channel, now))
            for channel, i in enumerate(self.indexes, start=1)
        ]


def _meter_ctx(source: Collector, channel: int, ctx: Ctx) -> Ctx:
    found = source.on_channel(channel)
    if found is None:
        raise AccessError(4)  # object-unavailable: no meter on that channel (any more)
    meter, state = found
    return Ctx(meter, state, source.collected_at(channel, ctx.now), ctx.client, None, 1)


class RegisterCopy(CosemObject):
    """A meter's register as collected: class 4, the capture time is the collection time."""

    class_id = L.CLASS_EXTENDED_REGISTER
    attributes = 5

    def __init__(self, register: Register, channel: int, source: Collector) -> None:
        super().__init__(L.on_channel(register.ln, channel))
        self.register, self.channel, self.source = register, channel, source

    def value(self, ctx: Ctx, attr: int) -> bytes:
        mctx = _meter_ctx(self.source, self.channel, ctx)
        if isinstance(self.register, CosemObject) and self.register.class_id == 4:
            return self.register.value(mctx, attr)  # maximum demand: its own capture time
        if attr == 2:
            return self.register.value(mctx, 2)
        if attr == 3:
            return self.register.scaler_unit
        if attr == 4:
            return axdr.enc_uint8(0)
        return axdr.enc_datetime(mctx.now)


class ProfileCopy(ProfileGeneric):
    """A meter's load profile or event log as collected: rows up to the collection time, the
    value columns on the meter's channel (registers as class 4, as the copies are)."""

    def __init__(self, profile: ProfileGeneric, channel: int, source: Collector) -> None:
        CosemObject.__init__(self, L.on_channel(profile.ln, channel))
        self.profile, self.channel, self.source = profile, channel, source

    def _copied(self, column: tuple[int, str, int]) -> tuple[int, bytes, int]:
        class_id, obis, attr = column
        if class_id == CLOCK_CLASS:
            return column
        ln = L.on_channel(bytes(int(p) for p in obis.split(".")), self.channel)
        return (L.CLASS_EXTENDED_REGISTER if class_id == 3 else class_id), ln, attr

    def get(self, ctx: Ctx, attr: int, selector: int | None, sel: Value | None) -> bytes:
        if attr == 1:
            return axdr.enc_octets(self.ln)
        mctx = _meter_ctx(self.source, self.channel, ctx)
        if attr == 3 and selector is None:
            return axdr.enc_array(
                [capture_object(*self._copied(c)) for c in self.profile.cols(mctx)]
            )
        return self.profile.get(mctx, attr, selector, sel)


class DataCopy(Data):
    def __init__(self, data: Data, channel: int, source: Collector) -> None:
        super().__init__(L.on_channel(data.ln, channel), data.fn)
        self.channel, self.source = channel, source

    def value(self, ctx: Ctx, attr: int) -> bytes:
        return self.fn(_meter_ctx(self.source, self.channel, ctx))


class ConcentratorObjects:
    """The management logical device's objects: the concentrator's own (as a meter's) and,
    on channels 1..254, the copies of its meters' objects, made on demand."""

    def __init__(self, source: Collector) -> None:
        self.source = source
        self._made: dict[bytes, CosemObject] = {}
        self.meter_list = Data(L.METER_LIST, self._list)

    def _list(self, ctx: Ctx) -> bytes:
        return axdr.enc_array(
            [
                axdr.enc_struct(
                    axdr.enc_uint16(e.channel),
                    axdr.enc_octets(e.serial.encode()),
                    axdr.enc_datetime(e.last_contact) if e.last_contact else axdr.enc_null(),
                )
                for e in self.source.meter_list(ctx.now)
            ]
        )

    def get(self, ln: bytes):
        if ln == L.METER_LIST:
            return self.meter_list
        channel = ln[1] if len(ln) == 6 else 0
        if not 1 <= channel <= L.MAX_CHANNEL:
            return OBJECTS.get(ln)
        made = self._made.get(ln)
        if made is None:
            made = self._copy(ln, channel)
            if made is not None:
                self._made[ln] = made
        return made

    def _copy(self, ln: bytes, channel: int) -> CosemObject | None:
        source = self.source
        if ln == L.device_id(channel):
            return Data(
                ln,
                lambda ctx: axdr.enc_octets(_meter_ctx(source, channel, ctx).meter.serial.encode()),
            )
        if ln == L.collected_at(channel):
            return Data(ln, lambda ctx: axdr.enc_datetime(_meter_ctx(source, channel, ctx).now))
        original = OBJECTS.get(L.off_channel(ln, channel))
        if isinstance(original, Register):
            return RegisterCopy(original, channel, source)
        if isinstance(original, (LoadProfile, EventLog)):
            return ProfileCopy(original, channel, source)
        if isinstance(original, Data) and original.ln == EVENT_CODE:
            return DataCopy(original, channel, source)
        return None  # the relay, the calendar, the clock...: not part of the copy


__all__ = ["Collector", "ConcentratorObjects", "MeterChannels"]
