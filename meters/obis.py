"""OBIS codes (IEC 62056-6-1): one validity rule and one stored form for the whole project.

Pure (no Django, nothing else of the project), so the registry, the store and the protocol
drivers and simulators share it; `.importlinter` holds it to that (contract obis-pure).

Accepted notations, all naming the same six value groups A to F (each 0..255):

* ``A-B:C.D.E*F`` (the stored form), with ``&`` or ``.`` also separating F;
* ``A.B.C.D.E.F`` (the dotted form of gurux and COSEM logical names);
* ``C.D.E`` or ``C.D.E*F`` (reduced: A-B default to 1-0, electricity, and F to 255);
* six bytes, or a tuple of six ints (a logical name as it travels on the wire).

A separator without F (``1-0:1.8.0*``), fewer than three groups C.D.E, a group above 255
and anything else raise :class:`ValueError`.  (Before, the registry refused ``.`` before F
and the protocols refused ``&``: one rule now, the union, tested in tests/meters/test_obis.py.)
"""

from __future__ import annotations

import re
from typing import NamedTuple

_FULL = re.compile(
    r"^\s*(?:(?P<a>\d{1,3})-(?P<b>\d{1,3}):)?(?P<c>\d{1,3})\.(?P<d>\d{1,3})\.(?P<e>\d{1,3})"
    r"(?:[*&.](?P<f>\d{1,3}))?\s*$"
)
_DOTTED = re.compile(r"^\s*(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\s*$")
GROUPS = 6
GROUP_MAX = 255
DEFAULT_A, DEFAULT_B, DEFAULT_F = 1, 0, 255


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
        if len(raw) != GROUPS:
            raise ValueError(f"an OBIS code is 6 bytes, not {len(raw)}")
        return cls(*raw)


def parse(value: str | bytes | tuple) -> Obis:
    """Parse any accepted notation (see the module docstring)."""
    if isinstance(value, (bytes, bytearray)):
        return Obis.from_bytes(bytes(value))
    if isinstance(value, tuple):
        if len(value) != GROUPS or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= GROUP_MAX for x in value
        ):
            raise ValueError(f"not an OBIS code: {value!r}")
        return Obis(*value)
    if not isinstance(value, str):
        raise ValueError(f"not an OBIS code: {value!r}")
    match = _DOTTED.match(value)
    if match:
        parts = [int(group) for group in match.groups()]
    else:
        match = _FULL.match(value)
        if not match:
            raise ValueError(f"not an OBIS code: {value!r}")
        g = match.groupdict()
        parts = [
            int(g["a"] if g["a"] is not None else DEFAULT_A),
            int(g["b"] if g["b"] is not None else DEFAULT_B),
            int(g["c"]),
            int(g["d"]),
            int(g["e"]),
            int(g["f"] if g["f"] is not None else DEFAULT_F),
        ]
    if any(part > GROUP_MAX for part in parts):
        raise ValueError(f"OBIS value groups are 0..255: {value!r}")
    return Obis(*parts)


def normalise(value: str | bytes | tuple) -> str:
    """The one stored form: `A-B:C.D.E*F`."""
    return str(parse(value))


def to_bytes(value: str | bytes | tuple) -> bytes:
    """The 6-byte logical name of a COSEM object."""
    return bytes(parse(value))


def dotted(value: str | bytes | tuple) -> str:
    """``A.B.C.D.E.F``, as gurux and COSEM logical names write it."""
    return parse(value).dotted


def is_valid(value: object) -> bool:
    try:
        parse(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


# Value group D of a register that counts from the start of measurement (IEC 62056-6-1
# "time integral 1" and "2"): a profile capturing it holds running totals, not energy per
# capture period (D = 29, "time integral 5").
CUMULATIVE_D = frozenset({8, 9})


def is_cumulative(value: str | bytes | tuple) -> bool:
    """A running-total register code (D = 8, 9); False for what is not an OBIS code."""
    try:
        return parse(value).d in CUMULATIVE_D
    except ValueError:
        return False
