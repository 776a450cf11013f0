"""Sans-IO codec of IEC 870-5-102 (REE profile): FT1.2 frames, ASDUs, time tags.

FT1.2 (IEC 870-5-1/-2), master polls:

* single character ``E5`` (acknowledge);
* fixed frame ``10 C A_lo A_hi CS 16``;
* variable frame ``68 L L 68 C A_lo A_hi ASDU CS 16``, ``L = len(C + A + ASDU)``.

``CS`` is the arithmetic sum mod 256 of the bytes from ``C`` to the end of the ASDU. The
control field of a primary (master) frame has PRM (0x40), FCB (0x20), FCV (0x10) and a
function; a secondary (meter) frame has ACD (0x20), DFC (0x10) and a function.

ASDU: type id, variable structure qualifier (object count), cause of transmission (bit 6 =
negative confirmation), common address (the measuring point, 2 bytes), record address,
then the information objects. Time tags: CP40 ("type A", 5 bytes: minute, hour with the
summer-time flag SU, day with day of week, month, year) and CP56 (7 bytes: milliseconds
of the minute, then as CP40).

Every parser raises only :class:`~collection.protocols.errors.FrameError` subclasses.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from ..errors import FrameError, MalformedResponse, ProtocolError

ACK = 0xE5
START_FIXED = 0x10
START_VARIABLE = 0x68
STOP = 0x16
MAX_L = 255

# Control field bits.
PRM = 0x40
FCB = 0x20  # primary: frame count bit; secondary: ACD (class 1 data available)
FCV = 0x10  # primary: frame count valid; secondary: DFC (data flow control)
ACD = 0x20

# Primary functions.
FN_RESET_LINK = 0
FN_SEND_CONFIRM = 3
FN_REQUEST_CLASS_1 = 10
FN_REQUEST_CLASS_2 = 11
FN_REQUEST_STATUS = 9
# Secondary functions.
FN_ACK = 0
FN_NACK = 1
FN_USER_DATA = 8
FN_NO_DATA = 9
FN_STATUS = 11

# ASDU type ids (REE profile).
M_SP_TA_2 = 1  # single-point information with time tag (events)
M_IT_TG_2 = 8  # integrated totals, absolute (4-byte values), period time tag
M_IT_TK_2 = 11  # integrated totals, increments
M_TI_TA_2 = 72  # current date and time
C_TI_NA_2 = 103  # read date and time
C_CS_TA_2 = 181  # set date and time
C_CI_NT_2 = 122  # read integrated totals (absolute) of a record, by time range
C_CI_NU_2 = 123  # read integrated totals (increments) of a record, by time range
C_SP_NB_2 = 102  # read single-point information (events) of a record, by time range
C_TA_VM_2 = 134  # read tariff information, stored values (billing closures), by time range
M_TA_VM_2 = 136  # tariff information, stored values
C_AC_NA_2 = 183  # open session with password
C_FS_NA_2 = 187  # end session

# Causes of transmission.
COT_REQUEST = 5
COT_ACTIVATION = 6
COT_ACTIVATION_CON = 7
COT_TERMINATION = 10
COT_NO_RECORD = 13  # requested data record not available
COT_NO_TYPE = 14  # requested ASDU type not available
COT_NEGATIVE = 0x40  # P/N bit

# Record addresses.
RECORD_HOURLY = 11  # load curve, integration period 1 (hourly)
RECORD_QUARTER_HOURLY = 12  # load curve, integration period 2 (quarter-hourly)
RECORD_DAILY = 21  # daily closures
RECORD_PERIOD_S = {RECORD_HOURLY: 3600, RECORD_QUARTER_HOURLY: 900, RECORD_DAILY: 86400}
# Event records: 52 supply and power quality, 53 clock (synchronisation, time changes),
# 54 parameters, 55 internal errors.
EVENT_RECORDS = (52, 53, 54, 55)
# Billing closures ("cierres") of contracts I, II and III.
CONTRACT_RECORDS = (134, 135, 136)
# Tariff information addresses: 20 the contract's total, 21..26 its tariff periods 1..6.
TARIFF_TOTAL = 20

# Qualifier of an integrated total.
Q_INVALID = 0x80  # IV
Q_ADJUSTED = 0x40  # CA, counter adjusted
Q_OVERFLOW = 0x20  # CY, carry
Q_TIME_CHANGED = 0x10  # VH, time verified/changed during the period
Q_PARAMETERS = 0x08  # MP, parameters modified during the period
Q_INTRUSION = 0x04  # IN
QUALITY_NAMES = {
    Q_INVALID: "invalid",
    Q_ADJUSTED: "adjusted",
    Q_OVERFLOW: "overflow",
    Q_TIME_CHANGED: "time_changed",
    Q_PARAMETERS: "parameters_changed",
    Q_INTRUSION: "intrusion",
}


class ChecksumError(FrameError):
    """A frame's checksum (byte sum mod 256) does not match its content."""


class GarbageError(FrameError):
    """Bytes that are no FT1.2 frame (bad start/stop byte, lengths that disagree)."""


class LinkNack(ProtocolError):
    """The meter's link layer refused the frame (NACK: message not accepted, link busy)."""

    retryable = True


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


# ----------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Frame:
    """One FT1.2 frame. ``kind``: "ack" (E5), "fixed" or "variable" (with an ASDU)."""

    kind: str
    control: int = 0
    address: int = 0
    asdu: bytes = b""

    @property
    def function(self) -> int:
        return self.control & 0x0F

    @property
    def primary(self) -> bool:
        return bool(self.control & PRM)


def fixed(control: int, address: int) -> bytes:
    body = bytes([control]) + struct.pack("<H", address)
    return bytes([START_FIXED]) + body + bytes([checksum(body), STOP])


def variable(control: int, address: int, asdu: bytes) -> bytes:
    body = bytes([control]) + struct.pack("<H", address) + asdu
    if len(body) > MAX_L:
        raise ValueError(f"ASDU too long for one frame ({len(asdu)} bytes)")
    return (
        bytes([START_VARIABLE, len(body), len(body), START_VARIABLE])
        + body
        + bytes([checksum(body), STOP])
    )


def encode(frame: Frame) -> bytes:
    if frame.kind == "ack":
        return bytes([ACK])
    if frame.kind == "fixed":
        return fixed(frame.control, frame.address)
    return variable(frame.control, frame.address, frame.asdu)


def frame_length(head: bytes) -> int:
    """Total length of the frame starting with `head` (1 byte suffices for E5 and fixed
    frames, a variable frame needs its 4-byte header); GarbageError for a bad start."""
    if not head:
        raise GarbageError("empty frame")
    start = head[0]
    if start == ACK:
        return 1
    if start == START_FIXED:
        return 6
    if start != START_VARIABLE:
        raise GarbageError(f"no FT1.2 start byte: {start:#04x}")
    if len(head) < 4:
        return 4
    if head[1] != head[2] or head[3] != START_VARIABLE:
        raise GarbageError("variable frame header: the two lengths or start bytes disagree")
    if head[1] < 3:
        raise GarbageError(f"variable frame too short (L={head[1]})")
    return head[1] + 6


def decode(data: bytes) -> Frame:
    """The frame `data` is exactly; only FrameError subclasses on bad input."""
    data = bytes(data)
    total = frame_length(data[:4])
    if len(data) != total:
        raise GarbageError(f"frame of {len(data)} bytes, its header says {total}")
    if total == 1:
        return Frame("ack")
    if data[-1] != STOP:
        raise GarbageError(f"no stop byte: {data[-1]:#04x}")
    body = data[1:4] if total == 6 else data[4:-2]
    if checksum(body) != data[-2]:
        raise ChecksumError(f"checksum {data[-2]:#04x}, content sums to {checksum(body):#04x}")
    address = body[1] | (body[2] << 8)
    if total == 6:
        return Frame("fixed", body[0], address)
    return Frame("variable", body[0], address, bytes(body[3:]))


async def read_frame(read: Callable[[int], Awaitable[bytes]]) -> bytes:
    """The bytes of one frame from a stream, `read(n)` returning exactly n bytes (GarbageError
    for a bad start byte; the frame itself is checked by :func:`decode`)."""
    head = await read(1)
    total = frame_length(head)
    if total > 1:
        head += await read(min(total, 4) - 1)
        total = frame_length(head)
        if total > len(head):
            head += await read(total - len(head))
    return head


def split(buffer: bytes) -> tuple[list[Frame], bytes]:
    """The complete frames at the start of `buffer`, and the incomplete rest."""
    frames = []
    while buffer:
        if buffer[0] == START_VARIABLE and len(buffer) < 4:
            break  # the header that says how long the frame is has not arrived yet
        total = frame_length(buffer[:4])
        if len(buffer) < total:
            break
        frames.append(decode(buffer[:total]))
        buffer = buffer[total:]
    return frames, bytes(buffer)


def primary_control(function: int, fcb: bool | None) -> int:
    """Master control field; `fcb` None for functions without FCV (reset, status)."""
    if fcb is None:
        return PRM | function
    return PRM | FCV | (FCB if fcb else 0) | function


# ----------------------------------------------------------------- ASDU


@dataclass(frozen=True, slots=True)
class Asdu:
    type_id: int
    cause: int  # without the P/N bit
    common_address: int  # measuring point
    record: int = 0
    objects: bytes = b""
    count: int = 1  # variable structure qualifier (number of objects)
    negative: bool = False

    def encode(self) -> bytes:
        return (
            struct.pack(
                "<BBBHB",
                self.type_id,
                self.count & 0x7F,
                (self.cause & 0x3F) | (COT_NEGATIVE if self.negative else 0),
                self.common_address,
                self.record,
            )
            + self.objects
        )

    @classmethod
    def decode(cls, data: bytes) -> Asdu:
        if len(data) < 6:
            raise MalformedResponse(f"ASDU of {len(data)} bytes (header is 6)")
        type_id, vsq, cot, common, record = struct.unpack_from("<BBBHB", data)
        return cls(
            type_id=type_id,
            cause=cot & 0x3F,
            common_address=common,
            record=record,
            objects=bytes(data[6:]),
            count=vsq & 0x7F,
            negative=bool(cot & COT_NEGATIVE),
        )


@dataclass(frozen=True, slots=True)
class Total:
    """One integrated total: the REE address (1 = AI, 2 = AE, 3..6 = R1..R4), its value
    (Wh / varh) and its qualifier byte."""

    address: int
    value: int
    quality: int = 0


@dataclass(frozen=True, slots=True)
class TotalsRecord:
    """One period of a record: its totals and the period's end (UTC)."""

    end: datetime
    totals: tuple[Total, ...]
    summer: bool = False


def encode_totals(totals: tuple[Total, ...], tag: bytes) -> bytes:
    out = b"".join(struct.pack("<BIB", t.address, t.value, t.quality) for t in totals)
    return out + tag


def decode_totals(asdu: Asdu, offset_minutes: int) -> TotalsRecord:
    body = asdu.objects
    if len(body) != asdu.count * 6 + 5:
        raise MalformedResponse(
            f"integrated totals ASDU: {len(body)} bytes for {asdu.count} objects"
        )
    totals = tuple(Total(*struct.unpack_from("<BIB", body, 6 * i)) for i in range(asdu.count))
    end, summer = decode_cp40(body[-5:], offset_minutes)
    return TotalsRecord(end, totals, summer)


@dataclass(frozen=True, slots=True)
class SinglePoint:
    """One event of ``M_SP_TA_2``: its address (SPA, the event group), its number within the
    group (SPQ, 7 bits), whether it starts (SPI 1) or ends (0), and when (UTC)."""

    address: int
    number: int
    start: bool
    at: datetime
    summer: bool = False


def encode_points(points: list[SinglePoint], offset_minutes: int) -> bytes:
    """``SPA, SPI | SPQ << 1, CP56`` per event (the meter's wall time with its SU flag)."""
    out = b""
    for p in points:
        tag = encode_cp56(to_local(p.at, offset_minutes, p.summer), p.summer)
        out += bytes([p.address, (p.number & 0x7F) << 1 | int(p.start)]) + tag
    return out


def decode_points(asdu: Asdu, offset_minutes: int) -> list[SinglePoint]:
    body = asdu.objects
    if len(body) != asdu.count * 9:
        raise MalformedResponse(f"single-point ASDU: {len(body)} bytes for {asdu.count} objects")
    out = []
    for i in range(asdu.count):
        chunk = body[9 * i : 9 * i + 9]
        at, summer = decode_cp56(chunk[2:], offset_minutes)
        out.append(SinglePoint(chunk[0], chunk[1] >> 1, bool(chunk[1] & 1), at, summer))
    return out


@dataclass(frozen=True, slots=True)
class Energy:
    """Absolute and incremental totals of one energy of a closure, and their qualifier."""

    absolute: int
    increment: int
    quality: int = 0


@dataclass(frozen=True, slots=True)
class Closure:
    """One billing closure of ``M_TA_VM_2``: a tariff address (20 total, 21..26 periods),
    active, reactive inductive and capacitive energy, the maximum demand and its time, the
    excess power, and the billing period (UTC)."""

    address: int
    active: Energy
    inductive: Energy
    capacitive: Energy
    max_demand: int
    max_demand_at: datetime
    max_demand_quality: int
    excess: int
    excess_quality: int
    start: datetime
    end: datetime


CLOSURE_SIZE = 63  # address, 3 x (4 + 4 + 1), 2 x (4 + 1) reserved, 4 + 5 + 1, 4 + 1, 5, 5
_RESERVED = struct.pack("<IBIB", 0, Q_INVALID, 0, Q_INVALID)


def encode_closure(closure: Closure, offset_minutes: int, summer_at) -> bytes:
    """The 63 bytes of one closure; `summer_at(utc)` says whether the meter's clock was on
    summer time then (the tags are wall times with the SU flag)."""

    def tag(at: datetime) -> bytes:
        summer = summer_at(at)
        return encode_cp40(to_local(at, offset_minutes, summer), summer)

    out = bytes([closure.address])
    for e in (closure.active, closure.inductive, closure.capacitive):
        out += struct.pack("<IIB", e.absolute, e.increment, e.quality)
    out += _RESERVED + struct.pack("<I", closure.max_demand) + tag(closure.max_demand_at)
    out += struct.pack("<BIB", closure.max_demand_quality, closure.excess, closure.excess_quality)
    return out + tag(closure.start) + tag(closure.end)


def decode_closures(asdu: Asdu, offset_minutes: int) -> list[Closure]:
    body = asdu.objects
    if len(body) != asdu.count * CLOSURE_SIZE:
        raise MalformedResponse(f"tariff information: {len(body)} bytes, {asdu.count} objects")
    out = []
    for i in range(asdu.count):
        b = body[CLOSURE_SIZE * i : CLOSURE_SIZE * (i + 1)]
        energies = [Energy(*struct.unpack_from("<IIB", b, 1 + 9 * k)) for k in range(3)]
        (max_demand,) = struct.unpack_from("<I", b, 38)
        max_at, _ = decode_cp40(b[42:47], offset_minutes)
        max_quality, excess, excess_quality = struct.unpack_from("<BIB", b, 47)
        start, _ = decode_cp40(b[53:58], offset_minutes)
        end, _ = decode_cp40(b[58:63], offset_minutes)
        out.append(
            Closure(
                b[0], *energies, max_demand, max_at, max_quality, excess, excess_quality, start, end
            )
        )
    return out


# ----------------------------------------------------------------- time tags


def _zone(offset_minutes: int, summer: bool) -> timezone:
    return timezone(timedelta(minutes=offset_minutes + (60 if summer else 0)))


def encode_cp40(local: datetime, summer: bool, invalid: bool = False) -> bytes:
    """CP40 of a local wall time (the meter's), with the SU flag."""
    if not 2000 <= local.year <= 2099:
        raise ValueError("CP40 carries years 2000..2099")
    return bytes(
        [
            local.minute | (0x80 if invalid else 0),
            local.hour | (0x80 if summer else 0),
            local.day | ((local.isoweekday()) << 5),
            local.month,
            local.year - 2000,
        ]
    )


def decode_cp40(data: bytes, offset_minutes: int) -> tuple[datetime, bool]:
    """(UTC time, summer flag) of a CP40 tag; the meter's standard time is UTC +
    `offset_minutes`, one hour more when SU is set."""
    if len(data) != 5:
        raise MalformedResponse("CP40 time tag is 5 bytes")
    if data[0] & 0x80:
        raise MalformedResponse("time tag marked invalid")
    summer = bool(data[1] & 0x80)
    try:
        local = datetime(
            2000 + (data[4] & 0x7F),
            data[3] & 0x0F,
            data[2] & 0x1F,
            data[1] & 0x1F,
            data[0] & 0x3F,
            tzinfo=_zone(offset_minutes, summer),
        )
    except ValueError as exc:
        raise MalformedResponse(f"CP40 time tag: {exc}") from None
    return local.astimezone(UTC), summer


def encode_cp56(local: datetime, summer: bool) -> bytes:
    ms = local.second * 1000 + local.microsecond // 1000
    return struct.pack("<H", ms) + encode_cp40(local, summer)


def decode_cp56(data: bytes, offset_minutes: int) -> tuple[datetime, bool]:
    if len(data) != 7:
        raise MalformedResponse("CP56 time tag is 7 bytes")
    ms = struct.unpack_from("<H", data)[0]
    if ms >= 60000:
        raise MalformedResponse(f"CP56 milliseconds {ms} >= 60000")
    at, summer = decode_cp40(data[2:], offset_minutes)
    return at + timedelta(milliseconds=ms), summer


def to_local(at: datetime, offset_minutes: int, summer: bool) -> datetime:
    """`at` (aware) as the meter's wall time, naive."""
    return at.astimezone(_zone(offset_minutes, summer)).replace(tzinfo=None)


def eu_summer(at: datetime) -> bool:
    """EU summer time rule: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
    last Sunday of October."""
    at = at.astimezone(UTC)

    def last_sunday(month: int) -> datetime:
        d = datetime(at.year, month, 31, 1, tzinfo=UTC)
        return d - timedelta(days=(d.weekday() + 1) % 7)

    return last_sunday(3) <= at < last_sunday(10)
