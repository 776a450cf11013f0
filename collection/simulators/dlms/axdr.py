"""A-XDR encoding of COSEM ``Data`` (IEC 62056-6-2 / Green Book), server side subset.

Encoders return ``bytes``; composite values are built from already encoded members, which
keeps the hot path (profile rows) a matter of byte concatenation.  ``decode`` returns a
``Value`` (tag + python value) tree and raises ``ApduError`` on any malformed input.
"""

from __future__ import annotations

import struct as _struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import ApduError

NULL = 0x00
ARRAY = 0x01
STRUCTURE = 0x02
BOOLEAN = 0x03
BIT_STRING = 0x04
DOUBLE_LONG = 0x05
DOUBLE_LONG_UNSIGNED = 0x06
OCTET_STRING = 0x09
VISIBLE_STRING = 0x0A
UTF8_STRING = 0x0C
BCD = 0x0D
INTEGER = 0x0F
LONG = 0x10
UNSIGNED = 0x11
LONG_UNSIGNED = 0x12
COMPACT_ARRAY = 0x13
LONG64 = 0x14
LONG64_UNSIGNED = 0x15
ENUM = 0x16
FLOAT32 = 0x17
FLOAT64 = 0x18
DATE_TIME = 0x19
DATE = 0x1A
TIME = 0x1B

_FIXED = {
    BOOLEAN: (1, "B"),
    DOUBLE_LONG: (4, ">i"),
    DOUBLE_LONG_UNSIGNED: (4, ">I"),
    BCD: (1, "b"),
    INTEGER: (1, "b"),
    LONG: (2, ">h"),
    UNSIGNED: (1, "B"),
    LONG_UNSIGNED: (2, ">H"),
    LONG64: (8, ">q"),
    LONG64_UNSIGNED: (8, ">Q"),
    ENUM: (1, "B"),
    FLOAT32: (4, ">f"),
    FLOAT64: (8, ">d"),
}
_OPAQUE_FIXED = {DATE_TIME: 12, DATE: 5, TIME: 4}


# --- length (BER definite length as used by A-XDR) -------------------------------------------


def enc_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82,)) + n.to_bytes(2, "big")
    return bytes((0x84,)) + n.to_bytes(4, "big")


def dec_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Return ``(length, new position)``."""
    if pos >= len(buf):
        raise ApduError("truncated length")
    first = buf[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 4 or pos + count > len(buf):
        raise ApduError("bad length encoding")
    return int.from_bytes(buf[pos : pos + count], "big"), pos + count


# --- encoders ------------------------------------------------------------------------------


def null() -> bytes:
    return b"\x00"


def boolean(v: bool) -> bytes:
    return b"\x03\xff" if v else b"\x03\x00"


def u8(v: int) -> bytes:
    return bytes((UNSIGNED, v))


def i8(v: int) -> bytes:
    return bytes((INTEGER,)) + _struct.pack("b", v)


def enum(v: int) -> bytes:
    return bytes((ENUM, v))


def u16(v: int) -> bytes:
    return bytes((LONG_UNSIGNED,)) + v.to_bytes(2, "big")


def i16(v: int) -> bytes:
    return bytes((LONG,)) + v.to_bytes(2, "big", signed=True)


def u32(v: int) -> bytes:
    return bytes((DOUBLE_LONG_UNSIGNED,)) + v.to_bytes(4, "big")


def i32(v: int) -> bytes:
    return bytes((DOUBLE_LONG,)) + v.to_bytes(4, "big", signed=True)


def u64(v: int) -> bytes:
    return bytes((LONG64_UNSIGNED,)) + v.to_bytes(8, "big")


def octets(b: bytes) -> bytes:
    return bytes((OCTET_STRING,)) + enc_length(len(b)) + b


def visible(s: str) -> bytes:
    b = s.encode("ascii")
    return bytes((VISIBLE_STRING,)) + enc_length(len(b)) + b


def structure(*members: bytes) -> bytes:
    return bytes((STRUCTURE,)) + enc_length(len(members)) + b"".join(members)


def array(members: list[bytes]) -> bytes:
    return bytes((ARRAY,)) + enc_length(len(members)) + b"".join(members)


def obis_bytes(text: str) -> bytes:
    parts = [int(p) for p in text.split(".")]
    if len(parts) != 6 or not all(0 <= p <= 255 for p in parts):
        raise ValueError(f"bad OBIS {text!r}")
    return bytes(parts)


def obis_text(b: bytes) -> str:
    return ".".join(str(x) for x in b)


# --- COSEM date-time (12 octets) -------------------------------------------------------------


def datetime_bytes(dt: datetime, deviation: int = 0, status: int = 0) -> bytes:
    """12-octet COSEM date-time of an aware datetime, expressed in UTC (deviation 0)."""
    dt = dt.astimezone(UTC)
    return (
        dt.year.to_bytes(2, "big")
        + bytes((dt.month, dt.day, dt.isoweekday(), dt.hour, dt.minute, dt.second))
        + bytes((dt.microsecond // 10000,))
        + deviation.to_bytes(2, "big", signed=True)
        + bytes((status,))
    )


def dt_octets(dt: datetime) -> bytes:
    """A date-time as the octet-string COSEM uses in attributes and profile rows."""
    return b"\x09\x0c" + datetime_bytes(dt)


def parse_datetime(b: bytes) -> datetime:
    """Parse a 12-octet COSEM date-time into an aware UTC datetime.

    Unspecified hour/minute/second/hundredths (0xFF) read as 0; an unspecified deviation
    (0x8000) means UTC.  Per the Blue Book, ``UTC = local + deviation`` (minutes).
    """
    if len(b) != 12:
        raise ApduError("date-time must be 12 octets")
    year = int.from_bytes(b[0:2], "big")
    month, day = b[2], b[3]
    if year == 0xFFFF or month in (0xFF, 0xFD, 0xFE) or day in (0xFF, 0xFD, 0xFE):
        raise ApduError("date-time with wildcard date cannot be resolved")

    def spec(x: int) -> int:
        return 0 if x == 0xFF else x

    hour, minute, second, hund = spec(b[5]), spec(b[6]), spec(b[7]), spec(b[8])
    deviation = int.from_bytes(b[9:11], "big", signed=True)
    try:
        dt = datetime(year, month, day, hour, minute, second, hund * 10000, tzinfo=UTC)
    except ValueError as e:
        raise ApduError(f"invalid date-time: {e}") from None
    if deviation != -0x8000:
        if not -720 <= deviation <= 840:
            raise ApduError("invalid date-time deviation")
        dt = dt + timedelta(minutes=deviation)
    return dt


# --- decoder -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Value:
    tag: int
    value: Any  # int | bytes | str | bool | float | None | list[Value]

    def as_int(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ApduError(f"expected an integer, got tag {self.tag:#x}")
        return self.value

    def as_bytes(self) -> bytes:
        if not isinstance(self.value, bytes):
            raise ApduError(f"expected an octet string, got tag {self.tag:#x}")
        return self.value

    def as_list(self) -> list[Value]:
        if not isinstance(self.value, list):
            raise ApduError(f"expected array/structure, got tag {self.tag:#x}")
        return self.value


_MAX_DEPTH = 16


def decode(buf: bytes, pos: int = 0, depth: int = 0) -> tuple[Value, int]:
    """Decode one ``Data`` at ``pos``; return ``(value, new position)``."""
    if depth > _MAX_DEPTH:
        raise ApduError("data nested too deeply")
    if pos >= len(buf):
        raise ApduError("truncated data")
    tag = buf[pos]
    pos += 1
    if tag == NULL:
        return Value(NULL, None), pos
    if tag in (ARRAY, STRUCTURE):
        count, pos = dec_length(buf, pos)
        if count > len(buf) - pos:  # every member takes at least one byte
            raise ApduError("array/structure count exceeds data")
        members = []
        for _ in range(count):
            v, pos = decode(buf, pos, depth + 1)
            members.append(v)
        return Value(tag, members), pos
    if tag in _FIXED:
        size, fmt = _FIXED[tag]
        if pos + size > len(buf):
            raise ApduError("truncated fixed-size data")
        raw = buf[pos : pos + size]
        (v,) = _struct.unpack(fmt, raw)
        if tag == BOOLEAN:
            v = bool(v)
        return Value(tag, v), pos + size
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        n, pos = dec_length(buf, pos)
        if pos + n > len(buf):
            raise ApduError("truncated string")
        raw = bytes(buf[pos : pos + n])
        if tag == OCTET_STRING:
            return Value(tag, raw), pos + n
        try:
            return Value(tag, raw.decode("utf-8" if tag == UTF8_STRING else "latin-1")), pos + n
        except UnicodeDecodeError:
            raise ApduError("bad string encoding") from None
    if tag == BIT_STRING:
        nbits, pos = dec_length(buf, pos)
        n = (nbits + 7) // 8
        if pos + n > len(buf):
            raise ApduError("truncated bit-string")
        return Value(tag, bytes(buf[pos : pos + n])), pos + n
    if tag in _OPAQUE_FIXED:
        n = _OPAQUE_FIXED[tag]
        if pos + n > len(buf):
            raise ApduError("truncated date/time")
        return Value(tag, bytes(buf[pos : pos + n])), pos + n
    raise ApduError(f"unsupported data tag {tag:#x}")


def decode_all(buf: bytes) -> Value:
    """Decode exactly one ``Data`` filling ``buf``."""
    v, pos = decode(buf, 0)
    if pos != len(buf):
        raise ApduError("trailing bytes after data")
    return v
