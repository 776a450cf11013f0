"""A deterministic IEC 870-5-102 meter (REE profile) behind a TCP listener on 127.0.0.1.

Each meter has a link address, a measuring point and a password; it answers FT1.2 frames
as a secondary station: link reset and status, SEND/CONFIRM of an ASDU (acknowledged with
``E5``), class 2 polls that fetch the answers queued by the last request. A frame whose FCB
did not alternate is a repeat: the last answer is sent again.

Integrated totals come from :mod:`..model` only: AI = +A (channel 1), AE = -A (channel 2),
R1 = +R (channel 3, all reactive import taken as inductive), R4 = -R (channel 4), R2 = R3 =
0. A quarter-hourly period is one model interval, an hourly one the sum of four; only
periods complete at the simulated time exist. Times are the meter's wall time in
Europe/Madrid with the summer-time flag (from ``zoneinfo``, independently of the driver).

Faults (``Fault.kind``): ``timeout`` (silence), ``garbage`` (bytes that are no frame),
``checksum`` (a valid frame with a wrong checksum), ``nack`` (link NACK), ``slow``.
``start_pty()`` serves the same meters on a pseudo-terminal (a serial line).
``quality`` marks periods: ``{period end (UTC): qualifier byte}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from collection.protocols.iec870_102 import codec as c

from .. import loopback, model
from ..loopback import LoopbackListener

FAULT_KINDS = ("timeout", "garbage", "checksum", "nack", "slow")
ZONE = ZoneInfo("Europe/Madrid")
STANDARD_OFFSET_MIN = 60
ADDRESSES = (1, 2, 3, 4, 5, 6)
_MODEL_CHANNEL = {1: 1, 2: 2, 3: 3, 6: 4}  # REE address -> model channel (others are 0)


class Fault(loopback.Fault):
    KINDS = FAULT_KINDS


def local_tag(at: datetime) -> tuple[datetime, bool]:
    """The meter's wall time of `at` and its summer-time flag."""
    local = at.astimezone(ZONE)
    return local.replace(tzinfo=None), bool(local.dst())


def from_tag(data: bytes) -> datetime:
    """UTC time of a CP40 tag in the meter's zone (the flag says which side of a change)."""
    at, _summer = c.decode_cp40(data, STANDARD_OFFSET_MIN)
    return at


def increment(serial: str, address: int, end: datetime, period_s: int) -> int:
    """The increment of `address` over the period ending at `end`."""
    channel = _MODEL_CHANNEL.get(address)
    if channel is None:
        return 0
    n = model.completed_intervals(end)
    return model.cumulative(serial, channel, n) - model.cumulative(
        serial, channel, max(0, n - period_s // model.INTERVAL_S)
    )


def absolute(serial: str, address: int, end: datetime) -> int:
    channel = _MODEL_CHANNEL.get(address)
    if channel is None:
        return 0
    return model.cumulative(serial, channel, model.completed_intervals(end))


def period_ends(start: datetime, end: datetime, period_s: int, now: datetime) -> list[datetime]:
    """Ends of the complete periods with an end in [start, end] (aligned to UTC)."""
    step = timedelta(seconds=period_s)
    first_k = -(-int((start - model.EPOCH).total_seconds()) // period_s)
    at = model.EPOCH + first_k * step
    out = []
    while at <= end and at <= now:
        if at > model.EPOCH:
            out.append(at)
        at += step
    return out


@dataclass
class Iec102Meter:
    serial: str
    link_address: int
    measuring_point: int
    password: int
    fault: Fault | None = None
    quality: dict = field(default_factory=dict)
    clock_drift_s: float = 0.0
    requests: int = 0
    # link state
    _fcb: bool | None = None
    _last: bytes | None = None
    _queue: list = field(default_factory=list)
    _authenticated: bool = False

    def _user_data(self, asdu: c.Asdu) -> bytes:
        return c.variable(c.FN_USER_DATA, self.link_address, asdu.encode())

    def _reply(self, type_id, cause, record=0, objects=b"", count=1, negative=False) -> c.Asdu:
        return c.Asdu(type_id, cause, self.measuring_point, record, objects, count, negative)

    def handle(self, frame: c.Frame, now: datetime) -> bytes | None:
        """The answer to one primary frame (None: a frame for another meter)."""
        if frame.address != self.link_address or not frame.primary:
            return None
        fn = frame.function
        if fn == c.FN_RESET_LINK:
            self._fcb, self._last, self._queue = None, None, []
            self._authenticated = False
            return bytes([c.ACK])
        if fn == c.FN_REQUEST_STATUS:
            return c.fixed(c.FN_STATUS, self.link_address)
        if not frame.control & c.FCV:
            return c.fixed(c.FN_NACK, self.link_address)
        fcb = bool(frame.control & c.FCB)
        if self._fcb is not None and fcb == self._fcb and self._last is not None:
            return self._last  # a repeat: the same answer again
        self._fcb = fcb
        if fn == c.FN_SEND_CONFIRM and frame.kind == "variable":
            answer = self._activate(c.Asdu.decode(frame.asdu), now)
        elif fn == c.FN_REQUEST_CLASS_2:
            answer = (
                self._user_data(self._queue.pop(0))
                if self._queue
                else c.fixed(c.FN_NO_DATA, self.link_address)
            )
        else:
            answer = c.fixed(c.FN_NACK, self.link_address)
        self._last = answer
        return answer

    def _activate(self, asdu: c.Asdu, now: datetime) -> bytes:
        self.requests += 1
        if asdu.common_address != self.measuring_point:
            self._queue = [self._reply(asdu.type_id, c.COT_ACTIVATION_CON, negative=True)]
        elif asdu.type_id == c.C_AC_NA_2:
            ok = len(asdu.objects) == 4 and struct.unpack("<I", asdu.objects)[0] == self.password
            self._authenticated = ok
            self._queue = [self._reply(c.C_AC_NA_2, c.COT_ACTIVATION_CON, negative=not ok)]
        elif not self._authenticated:
            self._queue = [self._reply(asdu.type_id, c.COT_ACTIVATION_CON, negative=True)]
        elif asdu.type_id == c.C_FS_NA_2:
            self._authenticated = False
            self._queue = [self._reply(c.C_FS_NA_2, c.COT_ACTIVATION_CON, count=0)]
        elif asdu.type_id == c.C_TI_NA_2:
            local, summer = local_tag(now + timedelta(seconds=self.clock_drift_s))
            self._queue = [
                self._reply(c.M_TI_TA_2, c.COT_REQUEST, objects=c.encode_cp56(local, summer))
            ]
        elif asdu.type_id == c.C_CS_TA_2:
            ok = len(asdu.objects) == 7
            if ok:
                at, _summer = c.decode_cp56(asdu.objects, STANDARD_OFFSET_MIN)
                self.clock_drift_s = (at - now).total_seconds()
            self._queue = [self._reply(c.C_CS_TA_2, c.COT_ACTIVATION_CON, negative=not ok)]
        elif asdu.type_id in (c.C_CI_NT_2, c.C_CI_NU_2):
            self._queue = self._totals(asdu, now)
        else:
            self._queue = [self._reply(asdu.type_id, c.COT_NO_TYPE, negative=True)]
        return bytes([c.ACK])

    def _totals(self, asdu: c.Asdu, now: datetime) -> list[c.Asdu]:
        period_s = c.RECORD_PERIOD_S.get(asdu.record)
        if period_s is None or len(asdu.objects) != 12:
            return [self._reply(asdu.type_id, c.COT_NO_RECORD, asdu.record, negative=True)]
        first, last = asdu.objects[0], asdu.objects[1]
        start, end = from_tag(asdu.objects[2:7]), from_tag(asdu.objects[7:12])
        ends = period_ends(start, end, period_s, now)
        if not ends:
            return [self._reply(asdu.type_id, c.COT_NO_RECORD, asdu.record, negative=True)]
        wanted = [a for a in ADDRESSES if first <= a <= last]
        increments = asdu.type_id == c.C_CI_NU_2
        out = [self._reply(asdu.type_id, c.COT_ACTIVATION_CON, asdu.record, asdu.objects)]
        for at in ends:
            quality = self.quality.get(at, 0)
            totals = tuple(
                c.Total(
                    a,
                    increment(self.serial, a, at, period_s)
                    if increments
                    else absolute(self.serial, a, at),
                    quality,
                )
                for a in wanted
            )
            local, summer = local_tag(at)
            out.append(
                self._reply(
                    c.M_IT_TK_2 if increments else c.M_IT_TG_2,
                    c.COT_REQUEST,
                    asdu.record,
                    c.encode_totals(totals, c.encode_cp40(local, summer)),
                    count=len(totals),
                )
            )
        out.append(self._reply(asdu.type_id, c.COT_TERMINATION, asdu.record, asdu.objects))
        return out


@dataclass
class Iec102Fleet(LoopbackListener):
    """Meters by link address on one listener (a modem pool or a TCP-serial converter)."""

    meters: list[Iec102Meter]
    _rng: random.Random = field(default_factory=lambda: random.Random(102), repr=False)

    def __post_init__(self) -> None:
        self.by_link = {m.link_address: m for m in self.meters}
        if len(self.by_link) != len(self.meters):
            raise ValueError("two meters share a link address")

    async def close(self) -> None:
        if self._pty is not None:
            await self._pty.close()
            self._pty = None
        await self._close_listener()

    async def _serve(self, reader, writer, *, idle: bool = True) -> None:
        """Answer one connection (or the pty, which never idles out) until it closes."""
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout if idle else None):
                    data = await c.read_frame(reader.readexactly)
                try:
                    frame = c.decode(data)
                except c.FrameError:
                    continue  # a bad frame is ignored, as on a line
                meter = self.by_link.get(frame.address)
                if meter is None:
                    continue
                answer = await self._answer(meter, frame)
                if answer:
                    writer.write(answer)
                    await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, c.FrameError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, meter: Iec102Meter, frame: c.Frame) -> bytes | None:
        fault = meter.fault
        if fault is not None and fault.kind == "timeout":
            return None
        if fault is not None and fault.kind == "garbage":
            return bytes([0x55]) + bytes(self._rng.randrange(256) for _ in range(9))
        if fault is not None and fault.kind == "nack":
            return c.fixed(c.FN_NACK, meter.link_address)
        answer = meter.handle(frame, self.now())
        if answer is None:
            return None
        if fault is not None and fault.kind == "checksum":
            if answer[0] == c.ACK:
                answer = c.fixed(c.FN_ACK, meter.link_address)
            return answer[:-2] + bytes([(answer[-2] + 1) & 0xFF, c.STOP])
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
        return answer


def make_meters(
    count: int, *, first_serial: int = 10200001, first_link: int = 1, password: int = 1
) -> list[Iec102Meter]:
    """`count` meters with consecutive serials, link addresses and measuring points."""
    return [
        Iec102Meter(str(first_serial + i), first_link + i, first_link + i, password)
        for i in range(count)
    ]
