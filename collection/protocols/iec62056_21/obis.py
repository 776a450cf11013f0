"""Readout addresses as OBIS codes (IEC 62056-61 short codes), apart from the codec so the
simulator can share the codec without the OBIS module."""

from __future__ import annotations

from meters.obis import normalise

# Letters of value group C in IEC 62056-61 short codes: C = 96 (general service), F = 97
# (error), L = 98 (lists), P = 99 (profiles); they are abstract (A = 0).
_LETTERS = {"C": 96, "F": 97, "L": 98, "P": 99}


def obis_of(address: str) -> str | None:
    """The stored OBIS form of a data set's address ("1.8.0" -> "1-0:1.8.0*255",
    "C.1.0" -> "0-0:96.1.0*255"); None when it is none (e.g. "F.F")."""
    head, _, rest = address.partition(".")
    try:
        if head in _LETTERS and rest:
            d_e = rest.split(".")
            if len(d_e) == 1:
                d_e.append("0")
            return normalise(f"0-0:{_LETTERS[head]}.{d_e[0]}.{d_e[1]}")
        return normalise(address)
    except ValueError:
        return None


def address_of(obis: str) -> str:
    """The short readout address of a stored OBIS code ("1-0:1.8.0*255" -> "1.8.0")."""
    code = obis.split(":", 1)[-1].split("*", 1)[0]
    c, _, de = code.partition(".")
    letters = {v: k for k, v in _LETTERS.items()}
    if obis.startswith("0-0:") and c.isdigit() and int(c) in letters:
        return f"{letters[int(c)]}.{de}"
    return code


def profile_address(obis: str) -> str | None:
    """The ``P.nn`` address of a profile or log OBIS code (value group C = 99: "1-0:99.1.0*255"
    -> "P.01", "0-0:99.98.0*255" -> "P.98"); a ``P.nn`` address is taken as it is."""
    if obis.startswith("P.") and obis[2:].isdigit():
        return f"P.{int(obis[2:]):02d}"
    try:
        code = normalise(obis)
    except ValueError:
        return None
    c_d = code.split(":", 1)[1].split("*", 1)[0].split(".")
    if c_d[0] != "99" or not 1 <= int(c_d[1]) <= 99:
        return None
    return f"P.{int(c_d[1]):02d}"
