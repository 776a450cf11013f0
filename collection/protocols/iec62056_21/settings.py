"""Connection settings of one IEC 62056-21 meter: where it is, its device address, its P1
password (never in a repr or a log) and its clock plug-in."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import codec
from .clock import DIALECTS
from .profile import DIALECTS as PROFILE_DIALECTS


@dataclass(frozen=True)
class Iec21Settings:
    url: str  # tcp://host:port or a pyserial URL (socket://, rfc2217://, /dev/ttyUSB0)
    address: str = ""  # device address in the sign-on; "" = whoever is on the line
    password: str | None = field(default=None, repr=False)  # P1, programming mode
    timeout: float = 5.0  # per answer
    baudrate: int = 300  # sign-on rate on a serial line (mode C starts at 300 baud)
    serial_framing: str = "7E1"  # or "8N1"; a serial line's character framing
    max_baudrate: int = 19200  # never switch above this (the line's or the converter's limit)
    reaction_s: float | None = None  # pause before each request; None: from the identification
    bcc_repeats: int = 2  # NAKs for one readout block with a wrong BCC, then BccError
    clock: str = "standard"  # the meter model's clock plug-in (clock.DIALECTS)
    time_zone: str = "UTC"  # the utility's zone: the clock of a -local plug-in runs on it
    profile: str = "generic"  # the meter model's profile and log plug-in (profile.DIALECTS)
    exchange_log: bool = False

    def __post_init__(self) -> None:
        codec.sign_on(self.address)  # ValueError on an invalid address
        if self.clock not in DIALECTS:
            raise ValueError(f"unknown IEC 62056-21 clock plug-in {self.clock!r}")
        try:
            ZoneInfo(self.time_zone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(f"unknown time zone {self.time_zone!r}") from None
        if self.profile not in PROFILE_DIALECTS:
            raise ValueError(f"unknown IEC 62056-21 profile plug-in {self.profile!r}")
        parts = urlsplit(self.url)
        if parts.scheme == "tcp" and (not parts.hostname or not parts.port):
            raise ValueError(f"invalid url {self.url!r}; expected tcp://host:port")
        if self.serial_framing not in ("7E1", "8N1"):
            raise ValueError(f"serial framing is 7E1 or 8N1, not {self.serial_framing!r}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
