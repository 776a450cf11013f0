"""IEC 62056-21 messages (modes A, B and C), without I/O: build what the head-end sends, parse
what a meter answers. Shared by the session and the simulator; every parse error is a typed
:class:`~collection.protocols.errors.FrameError` (``MalformedResponse``, ``BccError``).

Messages (``CRLF`` = ``\\r\\n``):

* sign-on ``/?<address>!CRLF``; identification ``/XXXZ<ident>CRLF`` (``Z`` the baud
  character: a digit 0..6 = 300..19200 is mode C; a letter A..I is mode B, the meter switches
  to that rate at once and sends its readout; anything else is mode A, the readout follows at
  the sign-on rate; a lowercase third letter: 20 ms reaction time; ``\\2`` in ident: mode E);
* acknowledgement / option select ``ACK 0 Z Y CRLF`` (Y: 0 readout, 1 programming; mode C);
* data message ``STX <data> ETX BCC``; programming command ``SOH C D STX <data> ETX BCC``
  (``P1`` password, ``R1`` read, ``R5`` read a profile or log, ``W1`` write, ``B0`` break;
  ``B0`` has no data part);
  a partial block ends in ``EOT`` instead of ``ETX``;
* BCC: XOR of every byte after the first SOH/STX up to and including ETX/EOT.

Data sets are ``address(value*unit)``; a line may hold several, the readout ends in ``!``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..errors import FrameTooLarge, MalformedResponse

SOH, STX, ETX, EOT, ACK, NAK = b"\x01", b"\x02", b"\x03", b"\x04", b"\x06", b"\x15"
CRLF = b"\r\n"
BAUD_RATES = {str(i): 300 * 2**i for i in range(7)}  # "0": 300 .. "6": 19200
# Mode B: the meter switches at once to the rate its letter names (no option select).
MODE_B_RATES = {letter: 600 * 2**i for i, letter in enumerate("ABCDEF")}  # "A" 600..
MODE_B_RESERVED = "GHI"  # reserved mode B letters: a mode B meter, rate unknown
MODE_READOUT, MODE_PROGRAMMING = "0", "1"
MAX_BLOCK = 64 * 1024  # a readout larger than this is no meter's
MAX_ADDRESS = 32


class BccError(MalformedResponse):
    """A block's BCC does not match its bytes (a line error: retryable)."""


def bcc(data: bytes) -> int:
    """XOR of `data` (give it the bytes after SOH/STX up to and including ETX/EOT)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


# ----------------------------------------------------------------- head-end -> meter


def sign_on(address: str = "") -> bytes:
    if len(address) > MAX_ADDRESS or not all(c.isalnum() or c == " " for c in address):
        raise ValueError(f"invalid IEC 62056-21 device address {address!r}")
    return b"/?" + address.encode("ascii") + b"!" + CRLF


def option_select(baud_char: str, mode: str = MODE_READOUT) -> bytes:
    """``ACK 0 Z Y CRLF``: protocol control 0 (normal), baud `baud_char`, mode `mode`."""
    if baud_char not in BAUD_RATES or mode not in "012":
        raise ValueError(f"invalid option select baud {baud_char!r} mode {mode!r}")
    return ACK + b"0" + baud_char.encode() + mode.encode() + CRLF


def block(body: bytes, start: bytes = STX, end: bytes = ETX) -> bytes:
    """``start body end BCC`` with the BCC over ``body end`` (SOH blocks: from after SOH)."""
    payload = body + end
    return start + payload + bytes([bcc(payload)])


def command(name: str, data: bytes | None = None) -> bytes:
    """A programming command: ``SOH name STX data ETX BCC`` (``SOH B0 ETX BCC`` with no data)."""
    if data is None:
        return block(name.encode("ascii"), start=SOH)
    return block(name.encode("ascii") + STX + data, start=SOH)


def data_set(address: str, value: str = "", unit: str | None = None) -> bytes:
    inner = value if unit is None else f"{value}*{unit}"
    return f"{address}({inner})".encode("ascii")


def password(secret: str) -> bytes:
    return command("P1", b"(" + secret.encode("latin-1") + b")")


def read(address: str, value: str = "", name: str = "R1") -> bytes:
    """``R1 address()``; ``R5 P.01(from;to)`` and the like for profiles and logs."""
    return command(name, data_set(address, value))


def write(address: str, value: str) -> bytes:
    return command("W1", data_set(address, value))


BREAK = command("B0")


# ----------------------------------------------------------------- meter -> head-end


@dataclass(frozen=True, slots=True)
class Identification:
    manufacturer: str  # three letters
    baud_char: str  # "0".."6" in mode C
    ident: str
    reaction_20ms: bool  # lowercase third letter of the manufacturer
    mode_e: bool  # "\2" in the identification: DLMS over HDLC available

    @property
    def mode(self) -> str:
        """ "C" (a digit: option select, programming mode), "B" (a letter A..I: the rate
        switches at once) or "A" (the readout follows at the sign-on rate)."""
        if self.baud_char.isdigit():
            return "C"
        if self.baud_char in MODE_B_RATES or self.baud_char in MODE_B_RESERVED:
            return "B"
        return "A"

    @property
    def baud_rate(self) -> int | None:
        if self.mode == "B":
            return MODE_B_RATES.get(self.baud_char)
        return BAUD_RATES.get(self.baud_char)


# The baud character: printable, neither "/" nor "!" (mode A may use any such character).
_IDENT = re.compile(rb"^/([A-Za-z]{3})([\x22-\x2E\x30-\x7E])(.{1,64})\r\n$", re.S)


def parse_identification(line: bytes) -> Identification:
    match = _IDENT.match(line)
    if not match:
        raise MalformedResponse(f"not an identification message: {line[:80]!r}")
    manufacturer, baud, ident = match.groups()
    try:
        text = ident.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedResponse("identification is not ASCII") from None
    # Enhanced identification: \W pairs before the ident (\2: mode E available).
    enhanced = []
    while len(text) >= 2 and text[0] == "\\":
        enhanced.append(text[1])
        text = text[2:]
    mode_e = "2" in enhanced
    return Identification(
        manufacturer=manufacturer.decode(),
        baud_char=baud.decode(),
        ident=text,
        reaction_20ms=manufacturer[2:3].islower(),
        mode_e=mode_e,
    )


@dataclass(frozen=True, slots=True)
class Block:
    start: bytes  # SOH or STX
    body: bytes  # between STX (or SOH) and ETX/EOT
    partial: bool  # ended in EOT: more blocks follow


def parse_block(frame: bytes) -> Block:
    """One whole ``SOH/STX ... ETX/EOT BCC``; :class:`BccError` when the BCC is wrong."""
    if len(frame) < 3 or frame[:1] not in (SOH, STX) or frame[-2:-1] not in (ETX, EOT):
        raise MalformedResponse(f"not a data block: {frame[:80]!r}")
    if len(frame) > MAX_BLOCK:
        raise FrameTooLarge(f"block of {len(frame)} bytes")
    if bcc(frame[1:-1]) != frame[-1]:
        raise BccError(f"BCC {frame[-1]:02X} != {bcc(frame[1:-1]):02X}")
    return Block(start=frame[:1], body=frame[1:-2], partial=frame[-2:-1] == EOT)


class Reader:
    """Cuts a byte stream into messages: a CRLF line (identification, echoed request), a
    single ACK/NAK, or a block up to ETX/EOT and its BCC. Feed bytes; ``next()`` returns one
    message or None when it needs more."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_BLOCK + 2:
            raise FrameTooLarge("no message end within the size a meter sends")

    def next(self) -> bytes | None:
        buf = self.buffer
        if not buf:
            return None
        first = buf[:1]
        if first in (ACK, NAK):
            del buf[:1]
            return bytes(first)
        if first in (SOH, STX):
            ends = [i for i in (buf.find(ETX, 1), buf.find(EOT, 1)) if i > 0]
            if not ends:
                return None
            end = min(ends)
            if end + 1 >= len(buf):
                return None  # the BCC is still to come
            frame = bytes(buf[: end + 2])
            del buf[: end + 2]
            return frame
        if first == b"/":
            end = buf.find(CRLF)
            if end < 0:
                if len(buf) > 100:
                    raise MalformedResponse("identification line too long")
                return None
            line = bytes(buf[: end + 2])
            del buf[: end + 2]
            return line
        # Anything else is garbage: drop it whole so a caller can tell.
        junk = bytes(buf)
        buf.clear()
        raise MalformedResponse(f"unexpected bytes {junk[:40]!r}")


@dataclass(frozen=True, slots=True)
class DataSet:
    address: str
    values: tuple[tuple[str, str | None], ...]  # (value, unit) per bracket

    @property
    def value(self) -> str:
        return self.values[0][0] if self.values else ""

    @property
    def unit(self) -> str | None:
        return self.values[0][1] if self.values else None


_ADDRESS = re.compile(r"[0-9A-Za-z.:*&\-]{0,16}")


def parse_data(body: bytes) -> list[DataSet]:
    """The data sets of a readout or R1 answer (``!`` and CRLFs are separators)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedResponse("data block is not ASCII") from None
    out: list[DataSet] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\r\n!":
            i += 1
            continue
        match = _ADDRESS.match(text, i)
        address = match.group(0)
        i = match.end()
        values = []
        while i < n and text[i] == "(":
            close = text.find(")", i)
            if close < 0:
                raise MalformedResponse(f"unclosed bracket after {address!r}")
            inner = text[i + 1 : close]
            if "(" in inner:
                raise MalformedResponse(f"nested bracket after {address!r}")
            value, star, unit = inner.partition("*")
            values.append((value, unit if star else None))
            i = close + 1
        if not values:
            raise MalformedResponse(f"data set {address!r} has no value")
        out.append(DataSet(address=address, values=tuple(values)))
    return out


# ----------------------------------------------------------------- units

# Readout unit -> (contract unit, power of ten to multiply by).
UNITS = {
    "kWh": ("Wh", 3),
    "Wh": ("Wh", 0),
    "MWh": ("Wh", 6),
    "kvarh": ("varh", 3),
    "varh": ("varh", 0),
    "kW": ("W", 3),
    "W": ("W", 0),
    "kvar": ("var", 3),
    "var": ("var", 0),
    "kVA": ("VA", 3),
    "V": ("V", 0),
    "A": ("A", 0),
    "Hz": ("Hz", 0),
    "deg": ("deg", 0),
    "°": ("deg", 0),
}


def to_contract(value: str, unit: str | None) -> tuple[Decimal | None, str | None]:
    """A readout value in the contract unit (kWh -> Wh, ...); (None, unit) if not a number."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None, unit
    if not number.is_finite():
        return None, unit
    if unit is None:
        return number, None
    contract, exponent = UNITS.get(unit, (unit, 0))
    return number.scaleb(exponent), contract
