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

Events (``C_SP_NB_2`` 102 -> ``M_SP_TA_2`` 1, CP56 wall times with the SU flag): the model's
event log in REE groups (the simulator's choice of numbers): record 52 supply (SPA 3: number
1 power failure start/end, 2 voltage sag, 3 swell), record 54 intrusion (SPA 18: 1 cover or
magnetic tamper, 5 reverse flow), and record 53 the clock changes the meter makes itself at
each EU summer-time change (SPA 7: 9 "old time" with the old wall time and SU flag, 11 "new
time" with the new ones - the same instant). ``extra_events`` adds ``(record, SinglePoint)``.
Billing closures (``C_TA_VM_2`` 134 -> ``M_TA_VM_2`` 136, records 134..136 alike): one per
Madrid calendar month, address 20 the total and 21/22 the model's tariffs T1/T2: absolute and
period energies from the model, the month's highest quarter-hour demand (W) and its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


# Model event code -> (record, SPA, SPQ, SPI) of the REE event it is told as.
EVENTS = {
    model.EVENT_POWER_DOWN: (52, 3, 1, True),
    model.EVENT_POWER_UP: (52, 3, 1, False),
    model.EVENT_VOLTAGE_SAG: (52, 3, 2, True),
    model.EVENT_VOLTAGE_SWELL: (52, 3, 3, True),
    model.EVENT_COVER_OPENED: (54, 18, 1, True),
    model.EVENT_MAGNETIC_TAMPER: (54, 18, 1, True),
    model.EVENT_REVERSE_FLOW: (54, 18, 5, True),
}
CLOCK_RECORD, CLOCK_GROUP, OLD_TIME, NEW_TIME = 53, 7, 9, 11


def summer_changes(start: datetime, end: datetime) -> list[datetime]:
    """The EU summer-time changes (01:00 UTC, last Sundays of March and October) in range."""
    out = []
    for year in range(start.year, end.year + 1):
        for month in (3, 10):
            last = datetime(year, month, 31, 1, tzinfo=UTC)
            at = last - timedelta(days=(last.weekday() + 1) % 7)
            if start <= at <= end:
                out.append(at)
    return out


def points(serial: str, record: int, start: datetime, end: datetime, extra=()) -> list:
    """The events of `record` in [start, end] as the meter tells them."""
    out = []
    for at, code in model.events(serial, start, end):
        rec, spa, spq, spi = EVENTS[code]
        if rec == record:
            out.append(c.SinglePoint(spa, spq, spi, at, local_tag(at)[1]))
    if record == CLOCK_RECORD:
        for at in summer_changes(start, end):
            before = local_tag(at - timedelta(seconds=1))[1]
            out.append(c.SinglePoint(CLOCK_GROUP, OLD_TIME, False, at, before))
            out.append(c.SinglePoint(CLOCK_GROUP, NEW_TIME, True, at, not before))
    out.extend(p for rec, p in extra if rec == record and start <= p.at <= end)
    return sorted(out, key=lambda p: p.at)


def month_ends(start: datetime, end: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
    """(period start, end) in UTC of the Madrid calendar months ending in [start, end]."""
    out = []
    local = (start - timedelta(days=1)).astimezone(ZONE)  # a month ending right at `start`
    year, month = local.year, local.month
    while True:
        first = datetime(year, month, 1, tzinfo=ZONE)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        last = datetime(year, month, 1, tzinfo=ZONE)
        at = last.astimezone(UTC)
        if at > end or at > now:
            return out
        if at >= start and at > model.EPOCH:
            out.append((first.astimezone(UTC), at))


def closures(serial: str, begin: datetime, end: datetime) -> list[c.Closure]:
    """Address 20 (total) and 21/22 (T1/T2) of the month [begin, end) from the model."""
    first, last = model.completed_intervals(begin), model.completed_intervals(end)

    def energy(channel: int) -> c.Energy:
        total = model.cumulative(serial, channel, last)
        return c.Energy(total, total - model.cumulative(serial, channel, first))

    def tariff(t: int) -> c.Energy:
        total = model.tariff_register(serial, t, end)
        return c.Energy(total, total - model.tariff_register(serial, t, begin))

    def demand(tariff_of: int | None) -> tuple[int, datetime]:
        best, best_k = 0, None
        for k in range(first, last):
            if tariff_of is None or model.tariff_of_interval(k) == tariff_of:
                v = model.interval_value(serial, 1, k)
                if v > best or best_k is None:
                    best, best_k = v, k
        return 4 * best, model.interval_end(best_k) if best_k is not None else end

    none = c.Energy(0, 0, c.Q_INVALID)
    out = []
    for address, active, inductive, capacitive, t in (
        (20, energy(1), energy(3), energy(4), None),
        (21, tariff(1), none, none, 1),
        (22, tariff(2), none, none, 2),
    ):
        watts, at = demand(t)
        out.append(
            c.Closure(address, active, inductive, capacitive, watts, at, 0, 0, 0, begin, end)
        )
    return out


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
    extra_events: list = field(default_factory=list)  # (record, SinglePoint)
    clock_drift_s: float = 0.0
    requests: int = 0
    closure_records: list = field(default_factory=list)  # contracts asked for, in order
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
        elif asdu.type_id in (c.C_SP_NB_2, c.C_TA_VM_2):
            self._queue = self._ranged(asdu, now)
        else:
            self._queue = [self._reply(asdu.type_id, c.COT_NO_TYPE, negative=True)]
        return bytes([c.ACK])

    def _ranged(self, asdu: c.Asdu, now: datetime) -> list[c.Asdu]:
        """Events of an event record, or billing closures of a contract, by time range."""
        events = asdu.type_id == c.C_SP_NB_2
        records = c.EVENT_RECORDS if events else c.CONTRACT_RECORDS
        if asdu.record not in records or len(asdu.objects) != 10:
            return [self._reply(asdu.type_id, c.COT_NO_RECORD, asdu.record, negative=True)]
        start, end = from_tag(asdu.objects[:5]), from_tag(asdu.objects[5:])
        if events:
            found = points(self.serial, asdu.record, start, min(end, now), self.extra_events)
            # Several events to an ASDU, as meters do (at most 20: 9 bytes each).
            chunks = [found[i : i + 20] for i in range(0, len(found), 20)]
            answers = [
                self._reply(
                    c.M_SP_TA_2,
                    c.COT_REQUEST,
                    asdu.record,
                    c.encode_points(chunk, STANDARD_OFFSET_MIN),
                    count=len(chunk),
                )
                for chunk in chunks
            ]
        else:
            self.closure_records.append(asdu.record)
            answers = [
                self._reply(
                    c.M_TA_VM_2,
                    c.COT_REQUEST,
                    asdu.record,
                    b"".join(
                        c.encode_closure(cl, STANDARD_OFFSET_MIN, lambda at: local_tag(at)[1])
                        for cl in closures(self.serial, begin, at)
                    ),
                    count=3,
                )
                for begin, at in month_ends(start, end, now)
            ]
        if not answers:
            return [self._reply(asdu.type_id, c.COT_NO_RECORD, asdu.record, negative=True)]
        confirm = self._reply(asdu.type_id, c.COT_ACTIVATION_CON, asdu.record, asdu.objects)
        done = self._reply(asdu.type_id, c.COT_TERMINATION, asdu.record, asdu.objects)
        return [confirm, *answers, done]

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
