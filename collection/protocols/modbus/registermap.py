"""Modbus meter models as register maps: loading, request planning and decoding (sans-IO).

A register map is a JSON data file (``maps/<name>.json``) naming, per quantity, where a meter
model keeps it and how it is encoded:

``obis``      the quantity, in the store's form ``A-B:C.D.E*F`` (e.g. ``1-0:1.8.0*255``;
              the simulator imports this module, so it parses no other notation);
``function``  3 (holding registers) or 4 (input registers);
``address``   the register address *on the wire* (0-based PDU address; a map whose manual
              numbers registers from 1, e.g. "3204", sets ``"first_register": 1`` and keeps the
              manual's numbers, the planner subtracts it);
``type``      int16 uint16 int32 uint32 int64 uint64 float32 float64;
``word_order`` "big" (most significant word first) or "little";
``scale``     decimal factor from the raw number to the contract unit (kWh -> Wh: "1000");
``resolution`` the value's step in the contract unit (floats are rounded to it);
``unit``      the contract unit ("Wh", "W", "V", "A", "Hz", "deg", "varh", "");
``role``      "energy" (a register read), "instantaneous", or "pf" (a power factor, from
              which the U-I angle is derived when the map has no angle register).

Nothing here does I/O: the session (:mod:`.session`) sends the planned requests.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from ..errors import MalformedResponse, NotSupported

MAPS_DIR = Path(__file__).with_name("maps")
MAX_READ_REGISTERS = 125  # Modbus: a read answer carries at most 125 registers (250 bytes)

# type -> (struct format of the big-endian bytes, number of 16-bit registers)
TYPES: dict[str, tuple[str, int]] = {
    "int16": (">h", 1),
    "uint16": (">H", 1),
    "int32": (">i", 2),
    "uint32": (">I", 2),
    "int64": (">q", 4),
    "uint64": (">Q", 4),
    "float32": (">f", 2),
    "float64": (">d", 4),
}
ROLES = ("energy", "instantaneous", "pf")
STORED_OBIS = re.compile(r"^\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}\*\d{1,3}$")


@dataclass(frozen=True, slots=True)
class Register:
    obis: str
    function: int
    address: int  # 0-based PDU address
    type: str
    word_order: str = "big"
    scale: Decimal = Decimal(1)
    resolution: Decimal | None = None
    unit: str = ""
    role: str = "energy"
    name: str = ""

    @property
    def count(self) -> int:
        return TYPES[self.type][1]

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class Request:
    """One read request: ``count`` registers from ``address`` with ``function``."""

    function: int
    address: int
    count: int
    registers: tuple[Register, ...]


@dataclass(frozen=True)
class RegisterMap:
    name: str
    label: str
    registers: tuple[Register, ...]
    max_registers: int = MAX_READ_REGISTERS  # some meters answer fewer per request
    max_gap: int = 0  # unused registers a request may span to merge two reads

    def by_obis(self) -> dict[str, Register]:
        return {r.obis: r for r in self.registers}

    def of_role(self, *roles: str) -> tuple[Register, ...]:
        return tuple(r for r in self.registers if r.role in roles)


# ----------------------------------------------------------------- loading


def _register(entry: dict, first_register: int) -> Register:
    kind = entry["type"]
    if kind not in TYPES:
        raise ValueError(f"unknown register type {kind!r}")
    function = int(entry.get("function", 3))
    if function not in (3, 4):
        raise ValueError(f"function code {function}: only 3 and 4 are reads of registers")
    word_order = entry.get("word_order", "big")
    if word_order not in ("big", "little"):
        raise ValueError(f"word_order must be big or little, not {word_order!r}")
    role = entry.get("role", "energy")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    address = int(str(entry["address"]), 0) - first_register
    if not 0 <= address <= 0xFFFF - TYPES[kind][1] + 1:
        raise ValueError(f"address {entry['address']} out of range")
    resolution = entry.get("resolution")
    if not STORED_OBIS.match(entry["obis"]):
        raise ValueError(f"OBIS {entry['obis']!r}: write it as A-B:C.D.E*F")
    return Register(
        obis=entry["obis"],
        function=function,
        address=address,
        type=kind,
        word_order=word_order,
        scale=Decimal(str(entry.get("scale", 1))),
        resolution=Decimal(str(resolution)) if resolution is not None else None,
        unit=entry.get("unit", ""),
        role=role,
        name=entry.get("name", ""),
    )


def parse_map(data: dict, name: str = "") -> RegisterMap:
    first = int(data.get("first_register", 0))
    registers = tuple(_register(e, first) for e in data["registers"])
    seen: set[str] = set()
    for r in registers:
        if r.obis in seen:
            raise ValueError(f"{name}: OBIS {r.obis} mapped twice")
        seen.add(r.obis)
    max_registers = int(data.get("max_registers", MAX_READ_REGISTERS))
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MAX_READ_REGISTERS}")
    return RegisterMap(
        name=data.get("name", name),
        label=data.get("label", name),
        registers=registers,
        max_registers=max_registers,
        max_gap=int(data.get("max_gap", 0)),
    )


def available() -> list[str]:
    """Names of the register maps shipped with the driver."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.json"))


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def load(name_or_path: str) -> RegisterMap:
    """A shipped map by name (case, spaces and dashes ignored: "SDM630", "sdm-630") or a JSON
    file by path (read anew each time). :class:`NotSupported` when there is no such map."""
    path = Path(name_or_path)
    if name_or_path.endswith(".json") and path.is_file():
        return parse_map(json.loads(path.read_text()), path.stem)
    return _shipped(_key(name_or_path))


@lru_cache(maxsize=64)
def _shipped(wanted: str) -> RegisterMap:
    """A shipped map by its key; the files ship with the code, so they are read once."""
    for candidate in MAPS_DIR.glob("*.json"):
        data = json.loads(candidate.read_text())
        names = {_key(candidate.stem), *(_key(a) for a in data.get("aliases", ()))}
        if wanted in names:
            return parse_map(data, candidate.stem)
    raise NotSupported(f"no Modbus register map {wanted!r} (have: {', '.join(available())})")


# ----------------------------------------------------------------- planning


def plan(
    registers: list[Register] | tuple[Register, ...], max_registers: int = 125, max_gap: int = 0
):
    """The fewest requests reading `registers`: same function, contiguous (or at most
    `max_gap` unused registers apart), at most `max_registers` per request."""
    out: list[Request] = []
    ordered = sorted(set(registers), key=lambda r: (r.function, r.address))
    current: list[Register] = []
    end = 0
    for reg in ordered:
        if reg.count > max_registers:
            raise ValueError(f"{reg.obis}: {reg.count} registers exceed {max_registers}")
        if current:
            head = current[0]
            if (
                reg.function == head.function
                and reg.address <= end + max_gap
                and max(end, reg.end) - head.address <= max_registers
            ):
                current.append(reg)
                end = max(end, reg.end)
                continue
            out.append(Request(head.function, head.address, end - head.address, tuple(current)))
        current, end = [reg], reg.end
    if current:
        head = current[0]
        out.append(Request(head.function, head.address, end - head.address, tuple(current)))
    return out


# ----------------------------------------------------------------- decoding


def words_to_bytes(words, word_order: str) -> bytes:
    ordered = list(words) if word_order == "big" else list(reversed(words))
    return b"".join(w.to_bytes(2, "big") for w in ordered)


def raw_value(reg: Register, words) -> int | float:
    """The number the registers hold (before scaling)."""
    fmt, count = TYPES[reg.type]
    if len(words) != count:
        raise MalformedResponse(f"{reg.obis}: {len(words)} registers, {reg.type} needs {count}")
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise MalformedResponse(f"{reg.obis}: register value out of range")
    return struct.unpack(fmt, words_to_bytes(words, reg.word_order))[0]


def to_decimal(reg: Register, raw: int | float) -> Decimal | None:
    """The raw number scaled to the contract unit; floats rounded to the resolution.
    None for a float that is not a number (a meter's "not available")."""
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        value = Decimal(repr(raw)) * reg.scale
    else:
        value = Decimal(raw) * reg.scale
    if reg.resolution is not None:
        try:
            value = value.quantize(reg.resolution, rounding=ROUND_HALF_EVEN)
        except InvalidOperation:  # more digits than Decimal carries: no meter's reading
            raise MalformedResponse(f"{reg.obis}: {raw!r} is beyond the register's range") from None
    return value


def decode(reg: Register, words) -> Decimal | None:
    return to_decimal(reg, raw_value(reg, words))


def slice_words(request: Request, words, reg: Register):
    """The words of `reg` out of one request's answer."""
    if len(words) != request.count:
        raise MalformedResponse(f"asked {request.count} registers, got {len(words)}")
    offset = reg.address - request.address
    return words[offset : offset + reg.count]


def encode(reg: Register, value: Decimal | int | float) -> list[int]:
    """Registers holding `value` (in the contract unit): the simulator's side of decode."""
    fmt, _count = TYPES[reg.type]
    raw = Decimal(value) / reg.scale
    if fmt[-1] in "fd":
        data = struct.pack(fmt, float(raw))
    else:
        data = struct.pack(fmt, int(raw.to_integral_value(rounding=ROUND_HALF_EVEN)))
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words if reg.word_order == "big" else list(reversed(words))


def angle_from_pf(pf: Decimal | None) -> Decimal | None:
    """U-I angle (degrees, 0.1 resolution) of a power factor; the sign is not knowable."""
    if pf is None or not -1 <= pf <= 1:
        return None
    degrees = math.degrees(math.acos(abs(float(pf))))
    return Decimal(str(round(degrees, 1)))
