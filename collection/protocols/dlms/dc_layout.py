"""Where a DLMS data concentrator keeps what it collected from its meters (sans-IO).

A concentrator that collects its meters itself (over PLC/RF, on its own schedule) offers
that copy in its own (management) logical device, so the head-end reads a meter's data with
one association to the concentrator instead of a session with the meter through it:

* the **meter list** ``0-0:128.0.0*255`` (class 1 Data, manufacturer-specific range):
  ``array of structure {channel: long-unsigned, serial: octet-string, last contact:
  date-time octet-string or null}``, one entry per meter the concentrator knows;
* per meter, its **channel** ``n`` (1..254) in value group B, the convention IEC 62056-6-1
  uses for the channels of sub-meters (M-Bus): the meter's device ID 1 ``0-n:96.1.0*255``
  (its serial), the time the copy was collected ``0-n:128.0.1*255`` (class 1, date-time),
  and every object of the meter's own model with B = n: registers as class 4 Extended
  Registers whose capture time is the collection time (``1-n:1.8.0*255``), the load
  profile ``1-n:99.1.0*255`` (class 7, its value columns also on channel n) and event
  logs ``0-n:99.98.x*255``.

This is the project's layout (no standard names one object model for it; real
concentrators differ); the simulator (``simulators/dlms_gateway.py``) serves it and the
head-end's own-data session (:mod:`.concentrator`) reads it. Logical names are bytes here:
the module imports nothing (not even ``meters.obis``) so the simulator may share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MAX_CHANNEL = 254  # B = 255 means "not used"; B = 0 is the concentrator's own data
METER_LIST = bytes((0, 0, 128, 0, 0, 255))
CLASS_DATA = 1
CLASS_REGISTER = 3
CLASS_EXTENDED_REGISTER = 4


def check_channel(channel: int) -> int:
    if not isinstance(channel, int) or not 1 <= channel <= MAX_CHANNEL:
        raise ValueError(f"a concentrator channel is 1..{MAX_CHANNEL}, not {channel!r}")
    return channel


def on_channel(ln: bytes, channel: int) -> bytes:
    """The logical name `ln` (6 bytes, B = 0) on `channel` (B = channel)."""
    if len(ln) != 6:
        raise ValueError("a logical name is 6 bytes")
    return bytes((ln[0], check_channel(channel))) + ln[2:]


def off_channel(ln: bytes, channel: int) -> bytes:
    """The meter's own name of a logical name on `channel` (B back to 0); others as they are."""
    if len(ln) == 6 and ln[1] == channel:
        return bytes((ln[0], 0)) + ln[2:]
    return ln


def device_id(channel: int) -> bytes:
    """Device ID 1 (the serial) of the meter on `channel`."""
    return bytes((0, check_channel(channel), 96, 1, 0, 255))


def collected_at(channel: int) -> bytes:
    """When the concentrator collected the copy it holds of the meter on `channel`."""
    return bytes((0, check_channel(channel), 128, 0, 1, 255))


@dataclass(frozen=True)
class Entry:
    """One entry of the meter list."""

    channel: int
    serial: str
    last_contact: datetime | None


__all__ = [
    "CLASS_DATA",
    "CLASS_EXTENDED_REGISTER",
    "CLASS_REGISTER",
    "MAX_CHANNEL",
    "METER_LIST",
    "Entry",
    "check_channel",
    "collected_at",
    "device_id",
    "off_channel",
    "on_channel",
]
