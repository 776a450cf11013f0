"""Connection settings of one Modbus meter (a unit id on a TCP link or an RTU bus)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# URL schemes: Modbus TCP; RTU framing over TCP (a TCP-serial converter); anything else is a
# pyserial URL of an RS-485 bus (RTU).
TCP_SCHEMES = ("tcp", "rtu+tcp")


@dataclass(frozen=True)
class ModbusSettings:
    url: str  # tcp://host:port, rtu+tcp://host:port, or a pyserial URL (/dev/ttyUSB0, ...)
    unit_id: int
    register_map: str  # a shipped map's name ("sdm630") or a JSON file's path
    timeout: float = 3.0  # per request
    retries: int = 0  # pymodbus's own resends of one request
    baudrate: int = 9600
    exchange_log: bool = False
    # The head-end profile (a meter without memory): its energy registers, polled by the job,
    # are captures at interval boundaries of `profile_period_s`; a poll further than
    # `profile_tolerance_s` from its boundary is clock-suspect; at most `profile_backfill`
    # missed boundaries before a poll are told as missing.
    profile_period_s: int = 900
    profile_tolerance_s: float = 60.0
    profile_backfill: int = 96

    def __post_init__(self) -> None:
        if not 0 <= self.unit_id <= 247:
            raise ValueError(f"Modbus unit id must be 0..247, not {self.unit_id}")
        if not self.register_map:
            raise ValueError("a Modbus meter needs a register map (its model)")
        if self.profile_period_s <= 0 or 86400 % self.profile_period_s:
            raise ValueError(f"profile period {self.profile_period_s} s does not divide a day")
        if not 0 <= self.profile_tolerance_s < self.profile_period_s / 2:
            raise ValueError("profile tolerance must be under half the period")
        scheme = urlsplit(self.url).scheme
        if scheme in TCP_SCHEMES:
            parts = urlsplit(self.url)
            if not parts.hostname or not parts.port:
                raise ValueError(f"invalid url {self.url!r}; expected {scheme}://host:port")

    @property
    def framing(self) -> str:
        """ "tcp" (MBAP header) or "rtu" (CRC-16, on a serial bus or through a converter)."""
        return "tcp" if urlsplit(self.url).scheme == "tcp" else "rtu"

    @property
    def line(self) -> str:
        """The physical line: every unit id on it shares one connection, one request at a time."""
        return self.url.split("?", 1)[0]
