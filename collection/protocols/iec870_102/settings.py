"""Connection settings of one IEC 870-5-102 meter (a link address and a measuring point)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .codec import RECORD_PERIOD_S


@dataclass(frozen=True)
class Iec102Settings:
    url: str  # tcp://host:port or a pyserial URL
    link_address: int
    measuring_point: int
    password: int = field(repr=False)  # the meter's access key (4 bytes), never logged
    timeout: float = 10.0  # per answer: GSM data calls cost 0.3-0.6 s a poll
    retries: int = 2  # resends of one frame (same FCB) after a timeout or a bad frame
    utc_offset_minutes: int = 60  # the meter's standard time (CET); SU adds an hour
    profile_record: int = 11  # record address of the load profile (11 hourly, 12 quarter)
    baudrate: int = 9600
    exchange_log: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.link_address <= 0xFFFF:
            raise ValueError(f"link address must be 0..65535, not {self.link_address}")
        if not 0 <= self.measuring_point <= 0xFFFF:
            raise ValueError(f"measuring point must be 0..65535, not {self.measuring_point}")
        if not 0 <= self.password <= 0xFFFFFFFF:
            raise ValueError("the password is a 4-byte number")
        if self.profile_record not in RECORD_PERIOD_S:
            raise ValueError(f"unknown record address {self.profile_record}")
        if urlsplit(self.url).scheme == "tcp":
            parts = urlsplit(self.url)
            if not parts.hostname or not parts.port:
                raise ValueError(f"invalid url {self.url!r}; expected tcp://host:port")
