"""Configuration (``SimulatedMeter``, ``Fault``) and lazily created runtime state of a meter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .limiter import LimiterState

if TYPE_CHECKING:
    from ..incidents import Script

FaultKind = Literal["timeout", "late", "reset", "corrupt", "clock", "short-list"]
ProfileStyle = Literal["interval", "cumulative"]
PROFILE_STYLES: tuple[str, ...] = ("interval", "cumulative")
FAULT_KINDS: tuple[str, ...] = ("timeout", "late", "reset", "corrupt", "clock", "short-list")

CLIENT_PUBLIC, CLIENT_LLS, CLIENT_HLS = 16, 17, 1


def _derive(label: str, serial: str, n: int) -> bytes:
    return hashlib.sha256(f"sim-dlms-test-key:{label}:{serial}".encode()).digest()[:n]


def default_auth_key(serial: str) -> bytes:
    """TEST key: first 16 bytes of SHA-256("sim-dlms-test-key:ak:<serial>")."""
    return _derive("ak", serial, 16)


def default_block_key(serial: str) -> bytes:
    """TEST key: first 16 bytes of SHA-256("sim-dlms-test-key:ek:<serial>")."""
    return _derive("ek", serial, 16)


def default_system_title(serial: str) -> bytes:
    """b"SIM" + 5 bytes: the serial's digits as a 40-bit number, else a hash of it."""
    digits = "".join(c for c in serial if c.isdigit())
    if digits and serial.isdigit() and int(digits) < 1 << 40:
        return b"SIM" + int(digits).to_bytes(5, "big")
    return b"SIM" + hashlib.blake2b(serial.encode(), digest_size=5).digest()


@dataclass(slots=True)
class Fault:
    """A misbehaviour of one meter.

    * ``timeout``: accepts the TCP connection, never answers.
    * ``late``: every reply is delayed by ``delay_s``.
    * ``reset``: reply number ``at_reply`` (1 = the AARE / UA) is cut in the middle and the
      connection is reset (RST).
    * ``corrupt``: from reply ``at_reply`` on, one byte in the middle of every reply is
      inverted (HDLC: the FCS no longer matches; WRAPPER: the APDU is garbled).
    * ``clock``: the meter clock is off by ``drift_s`` seconds (added to ``clock_drift_s``).
    * ``short-list``: a GET-with-list answer leaves out the items the meter cannot read
      (unknown object, wrong class) instead of giving each its error, so 10 items may get 7
      results (seen on gurux-based meters). Single GETs are answered correctly.
    """

    kind: FaultKind
    delay_s: float = 5.0
    at_reply: int = 2
    drift_s: float = 3 * 3600.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")


@dataclass(slots=True)
class SimulatedMeter:
    """Static configuration of one simulated DLMS/COSEM meter (keys are TEST keys)."""

    serial: str
    password: bytes = b"12345678"
    auth_key: bytes = b""  # default: default_auth_key(serial)
    block_key: bytes = b""  # default: default_block_key(serial)
    system_title: bytes = b""  # default: default_system_title(serial)
    clock_drift_s: float = 0.0
    fault: Fault | None = None
    max_pdu_size: int = 1024  # server max receive = largest APDU we send unblocked
    hdlc_max_info: int = 512
    profile_entries: int = 960  # load profile depth (attr 8): 10 days of 15-minute rows
    # What the load profile captures by default: "interval" = energy per period of the four
    # channels (x.29.0); "cumulative" = the registers 1.8.0 and 2.8.0 (IDIS style).
    profile_style: ProfileStyle = "interval"
    event_log_entries: int = 500  # event log depth (attr 8)
    script: Script | None = None  # scripted incidents (incidents.py) on top of the model's
    # The relay is bypassed (tampering, a welded contact): use goes on being recorded while
    # the disconnect control reads open (supply.py).
    relay_bypassed: bool = False

    def __post_init__(self) -> None:
        if not self.auth_key:
            self.auth_key = default_auth_key(self.serial)
        if not self.block_key:
            self.block_key = default_block_key(self.serial)
        if not self.system_title:
            self.system_title = default_system_title(self.serial)
        if len(self.system_title) != 8:
            raise ValueError("system title must be 8 bytes")
        if len(self.auth_key) != 16 or len(self.block_key) != 16:
            raise ValueError("security suite 0 keys are 16 bytes")
        if self.profile_style not in PROFILE_STYLES:
            raise ValueError(f"profile style is one of {PROFILE_STYLES}")
        if self.profile_entries < 1 or self.event_log_entries < 1:
            raise ValueError("profile depths must be at least 1 entry")

    @property
    def total_drift_s(self) -> float:
        extra = self.fault.drift_s if self.fault and self.fault.kind == "clock" else 0.0
        return self.clock_drift_s + extra


@dataclass(slots=True)
class MeterState:
    """Mutable per-meter state, created on the first connection (or state change)."""

    clock_offset_s: float = 0.0  # set by SET clock.time
    control_state: int = 1  # disconnect control: 0 disconnected, 1 connected, 2 ready
    control_mode: int = 2  # disconnect control attr 4 (supply.py: odd modes only arm)
    # [first, end) interval indexes during which the relay was open (end None: still is)
    off_spans: list[list[int | None]] = field(default_factory=list)
    server_ic: int = 0  # last invocation counter used by the meter
    client_ic: dict[int, int] = field(default_factory=dict)  # last accepted, per client SAP
    calendar: dict[int, bytes] = field(default_factory=dict)  # activity calendar overrides
    push_destination: str | None = None
    alarm: int = 0  # alarm register 1
    # alarm filters 1 and 2 (every alarm registered and pushed until a bit is cleared)
    alarm_filters: list[int] = field(default_factory=lambda: [0xFFFFFFFF, 0xFFFFFFFF])
    # modem, TCP-UDP, IPv4 and auto-connect settings written (comm_objects.DEFAULTS: the rest)
    communication: dict[str, object] = field(default_factory=dict)
    # load profile configuration written by SET attr 3 / 4 (None: the defaults)
    profile_columns: tuple[tuple[int, str, int], ...] | None = None
    profile_period: int | None = None
    clock_settings: dict[int, object] = field(default_factory=dict)  # time zone, DST (SET)
    special_days: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # index: date, day
    limiter: LimiterState = field(default_factory=LimiterState)
    # tariff registers kept when what decides the tariff last changed: (interval, (T1, T2));
    # None: the model's closed form (tariffs.py); the decoded schedule and a running total
    tariff_base: tuple[int, tuple[int, int]] | None = None
    tariff_schedule: object | None = None
    tariff_memo: tuple[int, tuple[int, ...]] | None = None
    sessions: int = 0
    last_client_title: bytes = b""  # calling-AP-title of the last AARQ (tests look at it)
    replies: int = 0  # replies sent (for at_reply faults), across connections

    def next_server_ic(self) -> int:
        self.server_ic += 1
        return self.server_ic
