"""Fast A-XDR (DLMS data) decoder/encoder.

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
from datetime import UTC, datetime, timedelta, timezone

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
    BCD: (">B", 1),
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

_DT = struct.Struct(">HBBBBBBBhB")
NOT_SPECIFIED_DEVIATION = -0x8000


def decode_datetime(raw: bytes, default_tz: timezone = UTC) -> datetime | None:
    """COSEM date-time (12 bytes) -> aware UTC datetime (None if unspecified).

    Deviation follows the Blue Book: minutes from local time to UTC, i.e.
    ``utc = local + deviation``; 0x8000 means "not specified" and
    ``default_tz`` is then assumed.
    """
    if len(raw) != 12:
        raise MalformedResponse("date-time must be 12 bytes")
    year, month, day, _dow, hour, minute, second, hundredths, dev, _status = _DT.unpack(raw)
    if year == 0xFFFF or month in (0xFF, 0xFD, 0xFE) or day in (0xFF, 0xFD, 0xFE) or hour == 0xFF:
        return None
    if minute == 0xFF:
        minute = 0
    if second == 0xFF:
        second = 0
    if hundredths == 0xFF:
        hundredths = 0
    tz = default_tz if dev == NOT_SPECIFIED_DEVIATION else UTC
    try:
        local = datetime(year, month, day, hour, minute, second, hundredths * 10000, tzinfo=tz)
    except ValueError:
        raise MalformedResponse("invalid date-time") from None
    if dev == NOT_SPECIFIED_DEVIATION:
        return local.astimezone(UTC)
    # "local" was built as UTC wall time; shift by the deviation.
    return local + timedelta(minutes=dev)


def datetime_status(raw: bytes) -> int:
    return raw[11] if len(raw) == 12 else 0xFF


def encode_datetime(value: datetime, deviation: int = 0, status: int = 0) -> bytes:
    """Aware datetime -> 12 byte COSEM date-time expressed in UTC (deviation 0)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    local = value.astimezone(UTC) - timedelta(minutes=deviation)
    return _DT.pack(
        local.year,
        local.month,
        local.day,
        local.isoweekday(),
        local.hour,
        local.minute,
        local.second,
        local.microsecond // 10000,
        deviation,
        status,
    )


# -- encoder ------------------------------------------------------------------


def enc_octets(raw: bytes) -> bytes:
    return bytes((OCTET_STRING,)) + encode_length(len(raw)) + bytes(raw)


def enc_visible(text: str) -> bytes:
    raw = text.encode("latin-1")
    return bytes((VISIBLE_STRING,)) + encode_length(len(raw)) + raw


def enc_uint8(v: int) -> bytes:
    return bytes((UINT8, v))


def enc_int8(v: int) -> bytes:
    return struct.pack(">Bb", INT8, v)


def enc_uint16(v: int) -> bytes:
    return struct.pack(">BH", UINT16, v)


def enc_uint32(v: int) -> bytes:
    return struct.pack(">BI", UINT32, v)


def enc_int16(v: int) -> bytes:
    return struct.pack(">Bh", INT16, v)


def enc_enum(v: int) -> bytes:
    return bytes((ENUM, v))


def enc_struct(*items: bytes) -> bytes:
    return bytes((STRUCTURE,)) + encode_length(len(items)) + b"".join(items)


def enc_array(items: list[bytes] | tuple[bytes, ...]) -> bytes:
    return bytes((ARRAY,)) + encode_length(len(items)) + b"".join(items)


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
