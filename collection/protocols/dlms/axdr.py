"""A-XDR (DLMS data) and COSEM date-time codec shared by client, simulator and push listener.

Decoding is iterative-free recursive with ``struct.unpack_from`` on one
``bytes`` object; values come out as plain Python objects:

* array/structure -> ``list``
* octet-string -> ``bytes``; visible/utf8 string -> ``str``
* integers/enums -> ``int``; bool -> ``bool``; floats -> ``float``
* bit-string -> ``str`` of "0"/"1"; date-time/date/time (types 25-27) -> ``bytes``

Every malformed input raises :class:`MalformedResponse`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ..errors import MalformedResponse

NULL = 0
ARRAY = 1
STRUCTURE = 2
BOOLEAN = 3
BIT_STRING = 4
INT32 = 5
UINT32 = 6
OCTET_STRING = 9
VISIBLE_STRING = 10
UTF8_STRING = 12
BCD = 13
INT8 = 15
INT16 = 16
UINT8 = 17
UINT16 = 18
COMPACT_ARRAY = 19
INT64 = 20
UINT64 = 21
ENUM = 22
FLOAT32 = 23
FLOAT64 = 24
DATE_TIME = 25
DATE = 26
TIME = 27

_FIXED = {
    INT32: (">i", 4),
    UINT32: (">I", 4),
    INT8: (">b", 1),
    INT16: (">h", 2),
    UINT8: (">B", 1),
    UINT16: (">H", 2),
    INT64: (">q", 8),
    UINT64: (">Q", 8),
    ENUM: (">B", 1),
    FLOAT32: (">f", 4),
    FLOAT64: (">d", 8),
    BCD: (">B", 1),  # two BCD digits in one octet: unsigned
}
_FIXED_STRUCTS = {k: (struct.Struct(f).unpack_from, n) for k, (f, n) in _FIXED.items()}
_RAW_FIXED = {DATE_TIME: 12, DATE: 5, TIME: 4}
MAX_DEPTH = 16


def read_length(buf: bytes, pos: int) -> tuple[int, int]:
    """A-XDR/BER length: returns (length, new position)."""
    try:
        first = buf[pos]
    except IndexError:
        raise MalformedResponse("truncated length") from None
    pos += 1
    if first < 0x80:
        return first, pos
    n = first & 0x7F
    if n == 0 or n > 4 or pos + n > len(buf):
        raise MalformedResponse("invalid length encoding")
    return int.from_bytes(buf[pos : pos + n], "big"), pos + n


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return b"\x82" + n.to_bytes(2, "big")
    return b"\x84" + n.to_bytes(4, "big")


def decode(buf: bytes, pos: int = 0, _depth: int = 0) -> tuple[object, int]:
    """Decode one A-XDR data item at ``pos``; return (value, next position)."""
    try:
        tag = buf[pos]
    except IndexError:
        raise MalformedResponse("truncated data") from None
    pos += 1
    fixed = _FIXED_STRUCTS.get(tag)
    if fixed is not None:
        unpack, size = fixed
        if pos + size > len(buf):
            raise MalformedResponse("truncated data")
        return unpack(buf, pos)[0], pos + size
    if tag == STRUCTURE or tag == ARRAY:
        if _depth >= MAX_DEPTH:
            raise MalformedResponse("data nested too deeply")
        count, pos = read_length(buf, pos)
        if count > len(buf) - pos:
            raise MalformedResponse("element count exceeds data")
        items = []
        append = items.append
        for _ in range(count):
            value, pos = decode(buf, pos, _depth + 1)
            append(value)
        return items, pos
    if tag == OCTET_STRING or tag == VISIBLE_STRING or tag == UTF8_STRING:
        n, pos = read_length(buf, pos)
        end = pos + n
        if end > len(buf):
            raise MalformedResponse("truncated string")
        raw = bytes(buf[pos:end])
        if tag == OCTET_STRING:
            return raw, end
        try:
            return raw.decode("utf-8" if tag == UTF8_STRING else "latin-1"), end
        except UnicodeDecodeError:
            raise MalformedResponse("invalid utf-8 string") from None
    if tag == NULL:
        return None, pos
    if tag == BOOLEAN:
        if pos >= len(buf):
            raise MalformedResponse("truncated data")
        return buf[pos] != 0, pos + 1
    raw_size = _RAW_FIXED.get(tag)
    if raw_size is not None:
        end = pos + raw_size
        if end > len(buf):
            raise MalformedResponse("truncated date/time")
        return bytes(buf[pos:end]), end
    if tag == BIT_STRING:
        nbits, pos = read_length(buf, pos)
        nbytes = (nbits + 7) // 8
        end = pos + nbytes
        if end > len(buf):
            raise MalformedResponse("truncated bit-string")
        bits = "".join(f"{b:08b}" for b in buf[pos:end])[:nbits]
        return bits, end
    raise MalformedResponse(f"unsupported data type tag {tag}")


def decode_all(buf: bytes) -> object:
    """Decode exactly one item spanning the whole buffer."""
    value, pos = decode(buf, 0)
    if pos != len(buf):
        raise MalformedResponse(f"{len(buf) - pos} trailing bytes after data")
    return value


# -- date-time ---------------------------------------------------------------
#
# COSEM date-time (Blue Book 4.1.6.1): year(2) month day day-of-week hour minute second
# hundredths deviation(2, signed) clock-status.  The deviation is the minutes from local
# time to UTC: ``utc = local + deviation`` (CET, UTC+01:00, is -60).  dlms-cosem and gurux
# read it the same way (tests/collection/protocols/test_codec_oracle.py).

DATETIME_LEN = 12
_DT = struct.Struct(">HBBBBBBBhB")
NOT_SPECIFIED = 0xFF  # any one-byte field
YEAR_NOT_SPECIFIED = 0xFFFF
DEVIATION_NOT_SPECIFIED = -0x8000
NOT_SPECIFIED_DEVIATION = DEVIATION_NOT_SPECIFIED
# Local time zones run from UTC-12:00 to UTC+14:00, i.e. deviations +720 down to -840.
DEVIATION_MIN = -840
DEVIATION_MAX = 720
MONTH_DAYLIGHT_SAVINGS_END = 0xFD
MONTH_DAYLIGHT_SAVINGS_BEGIN = 0xFE
DAY_LAST_OF_MONTH = 0xFE
DAY_SECOND_LAST_OF_MONTH = 0xFD
_WILDCARD_MONTHS = (NOT_SPECIFIED, MONTH_DAYLIGHT_SAVINGS_END, MONTH_DAYLIGHT_SAVINGS_BEGIN)
_WILDCARD_DAYS = (NOT_SPECIFIED, DAY_SECOND_LAST_OF_MONTH, DAY_LAST_OF_MONTH)
HUNDREDTH_US = 10_000  # microseconds in a hundredth of a second


def decode_datetime(raw: bytes, default_tz: timezone = UTC) -> datetime | None:
    """COSEM date-time (12 bytes) -> aware UTC datetime, or None when "not specified".

    A wildcard date (year, month or day not specified, or a recurring month/day) or an
    unspecified hour names no instant: None.  An unspecified minute, second or hundredths
    reads as 0.  An unspecified deviation (0x8000) means ``default_tz``; a deviation
    outside the time zones of the world is malformed.
    """
    if len(raw) != DATETIME_LEN:
        raise MalformedResponse("date-time must be 12 bytes")
    year, month, day, _dow, hour, minute, second, hundredths, dev, _status = _DT.unpack(raw)
    if (
        year == YEAR_NOT_SPECIFIED
        or month in _WILDCARD_MONTHS
        or day in _WILDCARD_DAYS
        or hour == NOT_SPECIFIED
    ):
        return None
    if minute == NOT_SPECIFIED:
        minute = 0
    if second == NOT_SPECIFIED:
        second = 0
    if hundredths == NOT_SPECIFIED:
        hundredths = 0
    if dev != DEVIATION_NOT_SPECIFIED and not DEVIATION_MIN <= dev <= DEVIATION_MAX:
        raise MalformedResponse(f"date-time deviation {dev} outside any time zone")
    tz = default_tz if dev == DEVIATION_NOT_SPECIFIED else UTC
    try:
        local = datetime(
            year, month, day, hour, minute, second, hundredths * HUNDREDTH_US, tzinfo=tz
        )
    except ValueError:
        raise MalformedResponse("invalid date-time") from None
    if dev == DEVIATION_NOT_SPECIFIED:
        return local.astimezone(UTC)
    # "local" was built as UTC wall time; shift by the deviation.
    return local + timedelta(minutes=dev)


def datetime_status(raw: bytes) -> int:
    return raw[11] if len(raw) == DATETIME_LEN else NOT_SPECIFIED


def encode_datetime(value: datetime, deviation: int = 0, status: int = 0) -> bytes:
    """Aware datetime -> 12 byte COSEM date-time, as local time of ``deviation``.

    ``deviation`` is minutes from local time to UTC (Blue Book): the wall time written is
    ``utc - deviation``, so :func:`decode_datetime` gives ``value`` back for any deviation.
    """
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    if not DEVIATION_MIN <= deviation <= DEVIATION_MAX:
        raise ValueError(f"deviation {deviation} outside any time zone")
    local = value.astimezone(UTC) - timedelta(minutes=deviation)
    return _DT.pack(
        local.year,
        local.month,
        local.day,
        local.isoweekday(),
        local.hour,
        local.minute,
        local.second,
        local.microsecond // HUNDREDTH_US,
        deviation,
        status,
    )


def enc_datetime(value: datetime, deviation: int = 0, status: int = 0) -> bytes:
    """A date-time as the octet-string COSEM attributes and profile rows carry it."""
    return enc_octets(encode_datetime(value, deviation, status))


# -- encoder ------------------------------------------------------------------
#
# Encoders return bytes; composite values are built from already encoded members, which
# keeps the hot paths (requests, profile rows of the simulator) byte concatenation.

_INT8 = struct.Struct(">Bb").pack
_INT16 = struct.Struct(">Bh").pack
_UINT16 = struct.Struct(">BH").pack
_INT32 = struct.Struct(">Bi").pack
_UINT32 = struct.Struct(">BI").pack
_INT64 = struct.Struct(">Bq").pack
_UINT64 = struct.Struct(">BQ").pack
BOOLEAN_TRUE = 0xFF


def enc_null() -> bytes:
    return b"\x00"


def enc_boolean(v: bool) -> bytes:
    return bytes((BOOLEAN, BOOLEAN_TRUE if v else 0))


def enc_octets(raw: bytes) -> bytes:
    return bytes((OCTET_STRING,)) + encode_length(len(raw)) + bytes(raw)


def enc_visible(text: str) -> bytes:
    raw = text.encode("latin-1")
    return bytes((VISIBLE_STRING,)) + encode_length(len(raw)) + raw


def enc_uint8(v: int) -> bytes:
    return bytes((UINT8, v))


def enc_int8(v: int) -> bytes:
    return _INT8(INT8, v)


def enc_uint16(v: int) -> bytes:
    return _UINT16(UINT16, v)


def enc_int16(v: int) -> bytes:
    return _INT16(INT16, v)


def enc_uint32(v: int) -> bytes:
    return _UINT32(UINT32, v)


def enc_int32(v: int) -> bytes:
    return _INT32(INT32, v)


def enc_uint64(v: int) -> bytes:
    return _UINT64(UINT64, v)


def enc_int64(v: int) -> bytes:
    return _INT64(INT64, v)


def enc_enum(v: int) -> bytes:
    return bytes((ENUM, v))


def enc_struct(*items: bytes) -> bytes:
    return bytes((STRUCTURE,)) + encode_length(len(items)) + b"".join(items)


def enc_array(items: list[bytes] | tuple[bytes, ...]) -> bytes:
    return bytes((ARRAY,)) + encode_length(len(items)) + b"".join(items)


# -- typed decoding ------------------------------------------------------------
#
# The server side needs each value's type (a SET must match the attribute's type), so it
# decodes into Value trees; the client's hot path keeps the plain decode() above.


@dataclass(frozen=True, slots=True)
class Value:
    """One A-XDR item with its type tag; arrays/structures hold lists of Value."""

    tag: int
    value: Any  # int | bytes | str | bool | float | None | list[Value]

    def as_int(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise MalformedResponse(f"expected an integer, got tag {self.tag:#x}")
        return self.value

    def as_bytes(self) -> bytes:
        if not isinstance(self.value, bytes):
            raise MalformedResponse(f"expected an octet string, got tag {self.tag:#x}")
        return self.value

    def as_list(self) -> list[Value]:
        if not isinstance(self.value, list):
            raise MalformedResponse(f"expected array/structure, got tag {self.tag:#x}")
        return self.value


def decode_typed(buf: bytes, pos: int = 0, _depth: int = 0) -> tuple[Value, int]:
    """Decode one item at ``pos`` into a :class:`Value`; return (value, next position).

    Same rules as :func:`decode`, except that a bit-string keeps its raw bytes.
    """
    try:
        tag = buf[pos]
    except IndexError:
        raise MalformedResponse("truncated data") from None
    fixed = _FIXED_STRUCTS.get(tag)
    if fixed is not None:
        unpack, size = fixed
        pos += 1
        if pos + size > len(buf):
            raise MalformedResponse("truncated data")
        return Value(tag, unpack(buf, pos)[0]), pos + size
    if tag == STRUCTURE or tag == ARRAY:
        if _depth >= MAX_DEPTH:
            raise MalformedResponse("data nested too deeply")
        count, pos = read_length(buf, pos + 1)
        if count > len(buf) - pos:
            raise MalformedResponse("element count exceeds data")
        members = []
        for _ in range(count):
            member, pos = decode_typed(buf, pos, _depth + 1)
            members.append(member)
        return Value(tag, members), pos
    if tag == BIT_STRING:
        nbits, start = read_length(buf, pos + 1)
        end = start + (nbits + 7) // 8
        if end > len(buf):
            raise MalformedResponse("truncated bit-string")
        return Value(tag, bytes(buf[start:end])), end
    value, pos = decode(buf, pos, _depth)
    return Value(tag, value), pos


def decode_typed_all(buf: bytes) -> Value:
    """Decode exactly one typed item spanning the whole buffer."""
    value, pos = decode_typed(buf, 0)
    if pos != len(buf):
        raise MalformedResponse(f"{len(buf) - pos} trailing bytes after data")
    return value


# -- units (Blue Book table, the common subset) --------------------------------

UNITS = {
    1: "a",
    2: "mo",
    3: "wk",
    4: "d",
    5: "h",
    6: "min",
    7: "s",
    8: "°",
    9: "°C",
    10: "currency",
    11: "m",
    12: "m/s",
    13: "m3",
    14: "m3",
    15: "m3/h",
    16: "m3/h",
    17: "m3/d",
    18: "m3/d",
    19: "l",
    20: "kg",
    21: "N",
    22: "Nm",
    23: "Pa",
    24: "bar",
    25: "J",
    26: "J/h",
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    34: "C",
    35: "V",
    36: "V/m",
    37: "F",
    38: "Ω",
    39: "Ωm2/m",
    40: "Wb",
    41: "T",
    42: "A/m",
    43: "H",
    44: "Hz",
    45: "1/(Wh)",
    46: "1/(varh)",
    47: "1/(VAh)",
    48: "V2h",
    49: "A2h",
    50: "kg/s",
    51: "S",
    52: "K",
    53: "1/(V2h)",
    54: "1/(A2h)",
    55: "1/m3",
    56: "%",
    57: "Ah",
    255: "",
}


def unit_name(code: int | None) -> str | None:
    if code is None:
        return None
    return UNITS.get(code, f"unit{code}")
