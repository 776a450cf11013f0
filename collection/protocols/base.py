"""Protocol-neutral meter-reading contract.

Every protocol driver (DLMS/COSEM now; IEC 62056-21, IEC 870-5-102, Modbus
later) implements :class:`MeterSession`.  Everything crossing this contract
is a plain frozen dataclass: timezone-aware UTC datetimes, ``Decimal``
values (scaler applied), OBIS codes as strings ``A-B:C.D.E*F``.  No
protocol-library type ever crosses it.  Errors are those of
:mod:`collection.protocols.errors`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from .errors import NotSupported

# ----------------------------------------------------------------- capabilities

# Reading.
READ_CLOCK = "read_clock"
READ_REGISTERS = "read_registers"
READ_LOAD_PROFILE = "read_load_profile"
READ_EVENTS = "read_events"
READ_INSTANTANEOUS = "read_instantaneous"
READ_RELAY = "read_relay"
# Commands (load control and configuration management execute these through a driver).
SET_CLOCK = "set_clock"
CONNECT = "connect"
DISCONNECT = "disconnect"
# Open the relay (if closed) and arm it, so the customer's button reconnects the supply.
READY_FOR_RECONNECTION = "ready_for_reconnection"
LIMITER = "limiter"  # read and write the load limiter's thresholds
WRITE_TOU = "write_tou"  # time-of-use / activity calendar
CONFIGURE_LOAD_PROFILE = "configure_load_profile"  # capture period and channels
PUSH_SETUP = "push_setup"  # read the push setup and set where pushes go
CLOCK_SETTINGS = "clock_settings"  # read and write the time zone and daylight-saving rules
COMMUNICATION = "communication"  # read and write the modem's APN, IP setup and connection mode
ALARM_FILTERS = "alarm_filters"  # read and write which alarms the meter registers and pushes
# A data concentrator's own session: the meters it reports (not in ALL_CAPABILITIES: meters
# have none; a driver that reaches concentrators declares it).
READ_DEVICES = "read_devices"

READ_CAPABILITIES = frozenset(
    {READ_CLOCK, READ_REGISTERS, READ_LOAD_PROFILE, READ_EVENTS, READ_INSTANTANEOUS, READ_RELAY}
)
COMMAND_CAPABILITIES = frozenset(
    {
        SET_CLOCK,
        CONNECT,
        DISCONNECT,
        READY_FOR_RECONNECTION,
        LIMITER,
        WRITE_TOU,
        CONFIGURE_LOAD_PROFILE,
        PUSH_SETUP,
        CLOCK_SETTINGS,
        COMMUNICATION,
        ALARM_FILTERS,
    }
)
ALL_CAPABILITIES = READ_CAPABILITIES | COMMAND_CAPABILITIES
# Every capability a driver may declare: a meter's, and a concentrator's own.
KNOWN_CAPABILITIES = ALL_CAPABILITIES | {READ_DEVICES}


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Reject naive datetimes; convert aware ones to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: the contract uses timezone-aware UTC datetimes")
    return value.astimezone(UTC)


# ----------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ClockReading:
    meter_time: datetime | None  # UTC, None if the meter reports "not specified"
    system_time: datetime  # head-end time when the answer arrived (UTC)
    status: int | None = None  # meter clock status byte, if any

    @property
    def drift_seconds(self) -> float | None:
        if self.meter_time is None:
            return None
        return (self.meter_time - self.system_time).total_seconds()


@dataclass(frozen=True, slots=True)
class RegisterValue:
    obis: str
    value: Decimal | None  # scaler applied; None for non-numeric values
    unit: str | None  # e.g. "Wh", "W", "V"
    scaler: int = 0  # decimal exponent that was applied
    capture_time: datetime | None = None  # maximum demand / extended registers
    raw: int | str | bytes | None = None  # the value as read, before scaling
    status: int | None = None
    error: str | None = None  # the meter refused this register (value is None)


@dataclass(frozen=True, slots=True)
class ReportedDevice:
    """A meter a concentrator reports: its serial, the channel its collected data is on
    (None when the concentrator keeps no copy), when the concentrator last heard it."""

    serial: str
    channel: int | None = None
    last_contact: datetime | None = None


@dataclass(frozen=True, slots=True)
class Channel:
    obis: str
    unit: str | None = None
    scaler: int = 0
    attribute: int = 2


@dataclass(frozen=True, slots=True)
class ProfileRow:
    timestamp: datetime  # interval end (UTC)
    values: tuple[Decimal | None, ...]
    # The IEC 62056 (DLMS AMR) profile status byte, whatever the protocol: 0x80 power down,
    # 0x20 clock adjusted, 0x04 data not valid... (collection.validation.status_flags reads
    # it); a driver translates its own quality bits into it.
    status: int | None = None


@dataclass(frozen=True, slots=True)
class ProfileBlock:
    profile: str  # OBIS of the profile
    channels: tuple[Channel, ...]
    rows: tuple[ProfileRow, ...]
    period_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class MeterEvent:
    timestamp: datetime
    code: int  # the meter's own event code
    log: str  # OBIS of the event log
    data: tuple = ()


@dataclass(frozen=True, slots=True)
class InstantaneousValues:
    read_at: datetime
    voltages: tuple[Decimal | None, ...] = ()  # per phase L1..L3, V
    currents: tuple[Decimal | None, ...] = ()  # per phase, A
    angles: tuple[Decimal | None, ...] = ()  # per phase U-I angle, degrees
    frequency: Decimal | None = None  # Hz
    active_power: Decimal | None = None  # W (total)


@dataclass(frozen=True, slots=True)
class RelayState:
    connected: bool  # output_state
    control_state: str  # "disconnected" | "connected" | "ready_for_reconnection" | "unknown"


@dataclass(frozen=True, slots=True)
class EmergencyProfile:
    """While active (from ``activation`` for ``duration_seconds``, when the meter's group
    ids name ``profile_id``) the limiter uses its emergency threshold."""

    profile_id: int
    activation: datetime | None  # UTC; None: not set
    duration_seconds: int


@dataclass(frozen=True, slots=True)
class Limiter:
    """A load limiter: above ``threshold`` for ``min_over_seconds`` the meter disconnects;
    under it again for ``min_under_seconds`` it may reconnect by itself.

    ``reconnect_count`` / ``lockout_seconds``: how many times in a row the meter reconnects
    by itself after a trip, and how long it then stays off (0: until a remote reconnect).
    None when the meter has no such setting (the head-end cannot set them there).
    """

    threshold: Decimal  # normal threshold, in the monitored value's unit (scaler applied)
    emergency_threshold: Decimal | None = None
    min_over_seconds: int = 0
    min_under_seconds: int = 0
    monitored: str | None = None  # OBIS of the monitored value (read only)
    active_threshold: Decimal | None = None  # the one in force now (read only)
    emergency_profile: EmergencyProfile | None = None
    emergency_groups: tuple[int, ...] = ()  # emergency profile ids this meter obeys
    emergency_active: bool = False  # read only
    reconnect_count: int | None = None
    lockout_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class PushSetup:
    """Where a push setup sends its messages and what it pushes."""

    setup: str  # OBIS of the push setup
    destination: str  # "host:port"
    objects: tuple[str, ...] = ()  # OBIS of the pushed objects, in order


@dataclass(frozen=True, slots=True)
class CommunicationSettings:
    """How the meter's modem reaches the head-end and listens for it."""

    apn: str  # the GPRS access point name
    connection_mode: int  # the auto-connect mode code (DLMS class 29: 101 always on, ...)
    listen_port: int  # the TCP port the meter listens on
    inactivity_timeout_s: int  # the meter closes an idle connection after this
    use_dhcp: bool
    ip_address: str | None = None  # dotted IPv4 (read back: the one in use, even with DHCP)
    subnet_mask: str | None = None
    gateway: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmFilters:
    """Which alarms the meter registers (and so pushes): a bit mask per alarm register, and
    (read only) the alarm bits raised now."""

    filter_1: int
    filter_2: int
    register_1: int | None = None
    register_2: int | None = None


@dataclass(frozen=True, slots=True)
class DayAction:
    start: time
    script: str  # OBIS of the script table (e.g. "0-0:10.0.100*255")
    selector: int  # script (tariff) id


@dataclass(frozen=True, slots=True)
class DayProfile:
    day_id: int
    actions: tuple[DayAction, ...]


@dataclass(frozen=True, slots=True)
class WeekProfile:
    name: str
    days: tuple[int, int, int, int, int, int, int]  # day_id Monday..Sunday


@dataclass(frozen=True, slots=True)
class Season:
    name: str
    start: datetime | None  # UTC; year may be ignored by the meter (recurring); None: wildcard
    week: str  # WeekProfile name


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """A date on which the calendar uses day profile ``day_id`` (a holiday)."""

    index: int
    month: int
    day: int
    day_id: int
    year: int | None = None  # None: every year


@dataclass(frozen=True, slots=True)
class TouCalendar:
    """A time-of-use / activity calendar, written to the passive calendar; its special days
    go to the special days table."""

    name: str
    seasons: tuple[Season, ...]
    weeks: tuple[WeekProfile, ...]
    days: tuple[DayProfile, ...]
    special_days: tuple[SpecialDay, ...] = ()


@dataclass(frozen=True, slots=True)
class TouState:
    """What a meter's calendar holds: the calendar in force, the one waiting, when the
    waiting one takes over (None: not set), and the special days (shared by both)."""

    active: TouCalendar
    passive: TouCalendar
    activate_at: datetime | None
    special_days: tuple[SpecialDay, ...] = ()


@dataclass(frozen=True, slots=True)
class DstRule:
    """When daylight saving begins or ends, every year: ``day`` of ``month`` (-1: the last
    ``weekday`` of the month; ``weekday`` 1 Monday .. 7 Sunday, None any) at local time."""

    month: int
    day: int
    weekday: int | None
    hour: int
    minute: int = 0


@dataclass(frozen=True, slots=True)
class ClockSettings:
    """The meter clock's time zone and daylight-saving rules."""

    time_zone_minutes: int  # the clock's time_zone attribute: deviation of local time to UTC
    dst_enabled: bool
    dst_begin: DstRule | None = None
    dst_end: DstRule | None = None
    dst_deviation_minutes: int = 60


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """What a load profile captures and how often."""

    profile: str  # OBIS
    period_seconds: int
    channels: tuple[str, ...]  # OBIS of the captured values, clock and status left out


@dataclass(frozen=True, slots=True)
class Exchange:
    direction: Literal["tx", "rx"]
    data: bytes
    at: datetime


# ----------------------------------------------------------------- counters


@runtime_checkable
class InvocationCounterStore(Protocol):
    """Persistent AES-GCM invocation counters, one sequence per key.

    ``reserve(key, n)`` returns the first of ``n`` never-used consecutive
    values and durably marks them used *before* any is sent.
    ``advance_to(key, value)`` ensures the next reserved value is ``>= value``.
    """

    async def get(self, key: str) -> int: ...

    async def reserve(self, key: str, n: int = 1) -> int: ...

    async def advance_to(self, key: str, value: int) -> None: ...


class MemoryInvocationCounterStore:
    """In-memory store (tests, CLI). Next value per key, starting at ``initial``."""

    def __init__(self, initial: int = 1, values: dict[str, int] | None = None) -> None:
        self._initial = initial
        self._next: dict[str, int] = dict(values or {})
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> int:
        return self._next.get(key, self._initial)

    async def reserve(self, key: str, n: int = 1) -> int:
        if n < 1:
            raise ValueError("n must be >= 1")
        async with self._lock:
            first = self._next.get(key, self._initial)
            if first + n > 0xFFFFFFFF:
                raise OverflowError("invocation counter exhausted: re-key the meter")
            self._next[key] = first + n
            return first

    async def advance_to(self, key: str, value: int) -> None:
        async with self._lock:
            if value > self._next.get(key, self._initial):
                self._next[key] = value


# ----------------------------------------------------------------- the contract


class MeterSession:
    """Base class of one association with one meter.

    Use as ``async with driver.open(settings, counters) as meter: ...``.  The read side
    (clock, registers, profiles, events, instantaneous values, relay state) and the command
    side (clock set, connect/disconnect, limiter, TOU calendar and special days, profile
    period and channels, push setup, time zone and DST rules) are each a capability;
    ``capabilities`` lists the ones the driver implements, and every other method raises
    :class:`NotSupported`.
    """

    capabilities: frozenset[str] = frozenset()
    exchange_log: list[Exchange] | None = None
    # When the data this session serves was taken from the meter, when that is not now: a
    # concentrator's copy of a meter (registers are stored as of then). None: read live.
    as_of: datetime | None = None
    # Why the session gave up reading several values per request (None: it did not).
    with_list_failure: str | None = None

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> MeterSession:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _unsupported(self, what: str) -> NotSupported:
        return NotSupported(f"{type(self).__name__} does not support {what}")

    async def read_clock(self) -> ClockReading:
        raise self._unsupported(READ_CLOCK)

    async def set_clock(self, value: datetime | None = None) -> ClockReading:
        raise self._unsupported(SET_CLOCK)

    async def read_registers(self, obis: list[str]) -> list[RegisterValue]:
        raise self._unsupported(READ_REGISTERS)

    async def read_load_profile(self, profile: str, start: datetime, end: datetime) -> ProfileBlock:
        raise self._unsupported(READ_LOAD_PROFILE)

    async def read_events(self, log: str, start: datetime, end: datetime) -> list[MeterEvent]:
        raise self._unsupported(READ_EVENTS)

    async def read_instantaneous(self) -> InstantaneousValues:
        raise self._unsupported(READ_INSTANTANEOUS)

    async def write_tou(self, calendar: TouCalendar, activate_at: datetime | None = None) -> None:
        raise self._unsupported(WRITE_TOU)

    async def read_tou(self) -> TouState:
        raise self._unsupported(WRITE_TOU)

    async def configure_load_profile(
        self, period_seconds: int, channels: list[str], profile: str | None = None
    ) -> None:
        raise self._unsupported(CONFIGURE_LOAD_PROFILE)

    async def read_profile_config(self, profile: str | None = None) -> ProfileConfig:
        raise self._unsupported(CONFIGURE_LOAD_PROFILE)

    async def read_clock_settings(self) -> ClockSettings:
        raise self._unsupported(CLOCK_SETTINGS)

    async def write_clock_settings(self, settings: ClockSettings) -> ClockSettings:
        raise self._unsupported(CLOCK_SETTINGS)

    async def relay_state(self) -> RelayState:
        raise self._unsupported(READ_RELAY)

    async def connect(self) -> RelayState:
        raise self._unsupported(CONNECT)

    async def disconnect(self) -> RelayState:
        raise self._unsupported(DISCONNECT)

    async def ready_for_reconnection(self) -> RelayState:
        """Leave the relay open but armed: the customer's button (not the head-end) closes
        it. A connected meter is disconnected first."""
        raise self._unsupported(READY_FOR_RECONNECTION)

    async def read_limiter(self) -> Limiter:
        raise self._unsupported(LIMITER)

    async def write_limiter(self, limiter: Limiter) -> Limiter:
        raise self._unsupported(LIMITER)

    async def read_push_setup(self, setup: str | None = None) -> PushSetup:
        raise self._unsupported(PUSH_SETUP)

    async def read_devices(self) -> list[ReportedDevice]:
        """A concentrator: the meters it reports, with where it keeps each one's data."""
        raise self._unsupported(READ_DEVICES)

    async def set_push_destination(self, destination: str, setup: str | None = None) -> PushSetup:
        raise self._unsupported(PUSH_SETUP)

    async def read_communication(self) -> CommunicationSettings:
        raise self._unsupported(COMMUNICATION)

    async def write_communication(self, settings: CommunicationSettings) -> CommunicationSettings:
        raise self._unsupported(COMMUNICATION)

    async def read_alarm_filters(self) -> AlarmFilters:
        raise self._unsupported(ALARM_FILTERS)

    async def write_alarm_filters(self, filters: AlarmFilters) -> AlarmFilters:
        raise self._unsupported(ALARM_FILTERS)
