"""OBIS codes (IEC 62056-6-1): parse `1-0:1.8.0*255`, `1.0.1.8.0.255`, `1.8.0`; format one way."""

from __future__ import annotations

import re
from typing import NamedTuple

from django.core.exceptions import ValidationError

from .choices import Accumulation

_FULL = re.compile(
    r"^\s*(?:(?P<a>\d{1,3})-(?P<b>\d{1,3}):)?(?P<c>\d{1,3})\.(?P<d>\d{1,3})\.(?P<e>\d{1,3})"
    r"(?:[*&](?P<f>\d{1,3}))?\s*$"
)
_DOTTED = re.compile(r"^\s*(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\s*$")


class Obis(NamedTuple):
    """The six value groups A to F of an OBIS code."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int

    def __str__(self) -> str:
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}*{self.f}"

    @property
    def dotted(self) -> str:
        return ".".join(str(part) for part in self)

    def to_bytes(self) -> bytes:
        return bytes(self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Obis:
        if len(raw) != 6:
            raise ValueError(f"an OBIS code is 6 bytes, not {len(raw)}")
        return cls(*raw)


def parse(text: str) -> Obis:
    """Parse any common notation; A-B default to 1-0 and F to 255 when left out."""
    if not isinstance(text, str):
        raise ValueError(f"not an OBIS code: {text!r}")
    match = _DOTTED.match(text)
    if match:
        parts = [int(group) for group in match.groups()]
    else:
        match = _FULL.match(text)
        if not match:
            raise ValueError(f"not an OBIS code: {text!r}")
        g = match.groupdict()
        parts = [
            int(g["a"] if g["a"] is not None else 1),
            int(g["b"] if g["b"] is not None else 0),
            int(g["c"]),
            int(g["d"]),
            int(g["e"]),
            int(g["f"] if g["f"] is not None else 255),
        ]
    if any(part > 255 for part in parts):
        raise ValueError(f"OBIS value groups are 0..255: {text!r}")
    return Obis(*parts)


def normalise(text: str) -> str:
    """The one stored form: `A-B:C.D.E*F`."""
    return str(parse(text))


def validate(text: str) -> None:
    """Django validator."""
    try:
        parse(text)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


# Value group D of a register that counts from the start of measurement (IEC 62056-6-1
# "time integral 1" and "2"): a profile capturing it holds running totals, not energy per
# capture period (D = 29, "time integral 5").
CUMULATIVE_D = frozenset({8, 9})


def default_accumulation(text: str) -> str:
    """Cumulative for a running-total register code (D = 8, 9), else interval."""
    try:
        cumulative = parse(text).d in CUMULATIVE_D
    except ValueError:
        return Accumulation.INTERVAL
    return Accumulation.CUMULATIVE if cumulative else Accumulation.INTERVAL
