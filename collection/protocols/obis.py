"""Tiny OBIS code helper: canonical text form ``A-B:C.D.E*F`` <-> 6 bytes."""

from __future__ import annotations

import re

_RE = re.compile(
    r"^\s*(?:(\d{1,3})-(\d{1,3}):)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[.*](\d{1,3}))?\s*$"
)
_DOTTED = re.compile(r"^\s*(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\s*$")


def parse_obis(text: str | bytes | tuple) -> tuple[int, int, int, int, int, int]:
    """Parse ``1-0:1.8.0*255``, ``1-0:1.8.0``, ``1.0.1.8.0.255`` or 6 bytes."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) != 6:
            raise ValueError(f"OBIS code must be 6 bytes, got {len(text)}")
        return tuple(text)  # type: ignore[return-value]
    if isinstance(text, tuple):
        if len(text) != 6 or not all(isinstance(x, int) and 0 <= x <= 255 for x in text):
            raise ValueError(f"invalid OBIS tuple {text!r}")
        return text  # type: ignore[return-value]
    if not isinstance(text, str):
        raise ValueError(f"invalid OBIS code {text!r}")
    m = _DOTTED.match(text)
    if m:
        parts = [int(g) for g in m.groups()]
    else:
        m = _RE.match(text)
        if not m:
            raise ValueError(f"invalid OBIS code {text!r}")
        a, b, c, d, e, f = m.groups()
        parts = [
            int(a) if a is not None else 1,
            int(b) if b is not None else 0,
            int(c),
            int(d),
            int(e),
            int(f) if f is not None else 255,
        ]
    if any(p > 255 for p in parts):
        raise ValueError(f"invalid OBIS code {text!r}: group > 255")
    return tuple(parts)  # type: ignore[return-value]


def format_obis(value: str | bytes | tuple) -> str:
    """Return the canonical ``A-B:C.D.E*F`` form."""
    a, b, c, d, e, f = parse_obis(value)
    return f"{a}-{b}:{c}.{d}.{e}*{f}"


def obis_bytes(value: str | bytes | tuple) -> bytes:
    return bytes(parse_obis(value))


def obis_dotted(value: str | bytes | tuple) -> str:
    """Gurux style ``1.0.1.8.0.255``."""
    return ".".join(str(x) for x in parse_obis(value))
