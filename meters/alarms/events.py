"""One event vocabulary: what a meter's event code means, whatever the meter calls it.

Every stored event keeps the meter's own code (`EventRecord.code`, in its log); this module
says which `EventKind` that code is. The default table follows the DLMS/IDIS standard event,
fraud-detection, disconnector and power-quality logs as the simulated fleet uses them
(collection/simulators/model.py). A meter model whose firmware numbers events its own way
extends the table in settings, keyed by "manufacturer name" of its `MeterModel`:

    AMI_EVENT_CODES = {"Acme AM550": {201: "terminal_cover_open", 202: "terminal_cover_closed"}}

(`codes_for_model` merges that over the default; an entry mapping to "" hides a code.)

Derived events (meters/alarms/tasks.py) are computed from data rather than read from a log;
they are stored as `EventRecord`s in the pseudo-log `DERIVED_LOG` with the codes below, so
they travel the same path (`alarm_engine.evaluate_events`) as the meter's own events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import models

from ..choices import RelayState
from ..obis import normalise

DERIVED_LOG = "derived"


class EventKind(models.TextChoices):
    POWER_FAILURE = "power_failure", "Power failure"
    POWER_RESTORED = "power_restored", "Power restored"
    COVER_OPEN = "cover_open", "Meter cover opened"
    COVER_CLOSED = "cover_closed", "Meter cover closed"
    TERMINAL_COVER_OPEN = "terminal_cover_open", "Terminal cover opened"
    TERMINAL_COVER_CLOSED = "terminal_cover_closed", "Terminal cover closed"
    MAGNETIC_TAMPER = "magnetic_tamper", "Magnetic tamper"
    MAGNETIC_TAMPER_END = "magnetic_tamper_end", "Magnetic field gone"
    REVERSE_ENERGY = "reverse_energy", "Reverse energy flow"
    VOLTAGE_SAG = "voltage_sag", "Voltage sag"
    VOLTAGE_SWELL = "voltage_swell", "Voltage swell"
    VOLTAGE_NORMAL = "voltage_normal", "Voltage back to normal"
    PHASE_LOSS = "phase_loss", "Phase loss"
    PHASE_RESTORED = "phase_restored", "Phase restored"
    RELAY_STATE_CHANGE = "relay_state_change", "Relay state change"
    CLOCK_ADJUSTED = "clock_adjusted", "Clock adjusted"
    AUTHENTICATION_FAILURE = "authentication_failure", "Authentication failure"
    # Derived from data (meters/alarms/tasks.py), not from a meter's log.
    METER_UNREACHABLE = "meter_unreachable", "Meter unreachable"
    METER_REACHABLE = "meter_reachable", "Meter reachable again"
    CLOCK_DRIFT = "clock_drift", "Clock drift over limit"
    # Raised on a shared line or concentrator (meters/alarms/lines.py), not on a meter.
    LINE_DOWN = "line_down", "Line or concentrator down"
    CLOCK_DRIFT_OK = "clock_drift_ok", "Clock drift within limit"
    CONSUMPTION_WHILE_DISCONNECTED = (
        "consumption_while_disconnected",
        ("Consumption while disconnected"),
    )
    ZERO_CONSUMPTION = "zero_consumption", "Zero consumption"
    REGISTER_BACKWARDS = "register_backwards", "Register running backwards"
    VOLTAGE_OUT_OF_BAND = "voltage_out_of_band", "Phase voltage out of band"
    VOLTAGE_IN_BAND = "voltage_in_band", "Phase voltage back in band"
    SYSTEM_TITLE_MISMATCH = (
        "system_title_mismatch",
        "Meter answered with another system title (HLS)",
    )
    # Raised by the system on something else than a meter or a line (meters/alarms/system.py).
    REPORT_DELIVERY_FAILED = "report_delivery_failed", "Report delivery failed"
    UNKNOWN = "unknown", "Unknown event"


K = EventKind

# DLMS/IDIS event codes (standard 0.0.99.98.0, fraud 0.0.99.98.1, disconnector 0.0.99.98.2,
# power quality 0.0.99.98.4 logs share one numbering) -> kind.
STANDARD_CODES: dict[int, str] = {
    1: K.POWER_FAILURE,
    2: K.POWER_RESTORED,
    4: K.CLOCK_ADJUSTED,  # old time
    5: K.CLOCK_ADJUSTED,  # new time
    40: K.TERMINAL_COVER_OPEN,  # the simulator calls it "cover opened"
    41: K.TERMINAL_COVER_CLOSED,
    42: K.MAGNETIC_TAMPER,  # strong DC field detected
    43: K.MAGNETIC_TAMPER_END,
    44: K.COVER_OPEN,
    45: K.COVER_CLOSED,
    46: K.AUTHENTICATION_FAILURE,  # association authentication failure
    47: K.AUTHENTICATION_FAILURE,  # decryption or authentication failure
    48: K.REVERSE_ENERGY,  # as the simulated fleet reports it
    59: K.RELAY_STATE_CHANGE,  # manual disconnection
    60: K.RELAY_STATE_CHANGE,  # manual connection
    61: K.RELAY_STATE_CHANGE,  # remote disconnection
    62: K.RELAY_STATE_CHANGE,  # remote connection
    63: K.RELAY_STATE_CHANGE,  # local disconnection
    76: K.VOLTAGE_SAG,
    77: K.VOLTAGE_NORMAL,
    78: K.VOLTAGE_SWELL,
    79: K.VOLTAGE_NORMAL,
    90: K.PHASE_LOSS,  # missing voltage L1
    91: K.PHASE_LOSS,  # L2
    92: K.PHASE_LOSS,  # L3
    93: K.PHASE_RESTORED,
}

# Derived kinds in the pseudo-log DERIVED_LOG: fixed codes, never reused.
DERIVED_CODES: dict[int, str] = {
    9001: K.METER_UNREACHABLE,
    9002: K.METER_REACHABLE,
    9003: K.CLOCK_DRIFT,
    9004: K.CLOCK_DRIFT_OK,
    9005: K.CONSUMPTION_WHILE_DISCONNECTED,
    9006: K.ZERO_CONSUMPTION,
    9007: K.REGISTER_BACKWARDS,
    9008: K.VOLTAGE_OUT_OF_BAND,
    9009: K.VOLTAGE_IN_BAND,
    9010: K.SYSTEM_TITLE_MISMATCH,
}
DERIVED_CODE_OF = {kind: code for code, kind in DERIVED_CODES.items()}

# A restore event clears open alarms of these kinds on the same meter.
CLEARS: dict[str, tuple[str, ...]] = {
    K.POWER_RESTORED: (K.POWER_FAILURE,),
    K.COVER_CLOSED: (K.COVER_OPEN,),
    K.TERMINAL_COVER_CLOSED: (K.TERMINAL_COVER_OPEN,),
    K.MAGNETIC_TAMPER_END: (K.MAGNETIC_TAMPER,),
    K.VOLTAGE_NORMAL: (K.VOLTAGE_SAG, K.VOLTAGE_SWELL),
    K.PHASE_RESTORED: (K.PHASE_LOSS,),
    K.METER_REACHABLE: (K.METER_UNREACHABLE,),
    K.CLOCK_DRIFT_OK: (K.CLOCK_DRIFT,),
    K.VOLTAGE_IN_BAND: (K.VOLTAGE_OUT_OF_BAND,),
}
RESTORE_KINDS = frozenset(CLEARS)

# Standard event-log codes that move the supply relay (STANDARD_NAMES 59-63), and where to.
RELAY_CODES: dict[int, str] = {
    59: RelayState.DISCONNECTED,
    60: RelayState.CONNECTED,
    61: RelayState.DISCONNECTED,
    62: RelayState.CONNECTED,
    63: RelayState.DISCONNECTED,
}
DISCONNECT_CODES = frozenset(c for c, s in RELAY_CODES.items() if s == RelayState.DISCONNECTED)
CONNECT_CODES = frozenset(c for c, s in RELAY_CODES.items() if s == RelayState.CONNECTED)


# What each standard code says, in an operator's words: (name, meaning). The simulated fleet
# uses these numbers too (collection/simulators/model.py, incidents.py).
STANDARD_NAMES: dict[int, tuple[str, str]] = {
    1: ("Power down", "the meter lost its supply (all phases)"),
    2: ("Power up", "the supply came back"),
    3: ("Daylight saving time changed", "the clock moved to or from summer time"),
    4: ("Clock adjusted (old time)", "the clock was set; this entry carries the time before"),
    5: ("Clock adjusted (new time)", "the clock was set; this entry carries the time after"),
    6: ("Clock invalid", "the clock lost its time and needs setting"),
    7: ("Replace battery", "the clock battery is low"),
    40: ("Terminal cover opened", "the cover over the supply terminals was removed"),
    41: ("Terminal cover closed", "the terminal cover is back in place"),
    42: ("Strong magnetic field", "a strong DC field was detected (possible tampering)"),
    43: ("Magnetic field gone", "the strong DC field is no longer detected"),
    44: ("Meter cover opened", "the meter's main cover was removed (tampering)"),
    45: ("Meter cover closed", "the meter's main cover is back in place"),
    46: ("Authentication failure", "a client failed to authenticate to the meter"),
    47: ("Decryption failure", "a message could not be deciphered or authenticated"),
    48: ("Reverse energy flow", "energy flowed from the customer into the grid unexpectedly"),
    59: ("Manual disconnection", "the relay was opened at the meter"),
    60: ("Manual connection", "the relay was closed at the meter"),
    61: ("Remote disconnection", "the relay was opened by a head-end command"),
    62: ("Remote connection", "the relay was closed by a head-end command"),
    63: ("Local disconnection", "the meter opened its relay itself (limiter, prepaid credit)"),
    76: ("Voltage sag", "the phase voltage fell below the lower limit"),
    77: ("Voltage sag ended", "the phase voltage is back above the lower limit"),
    78: ("Voltage swell", "the phase voltage rose above the upper limit"),
    79: ("Voltage swell ended", "the phase voltage is back below the upper limit"),
    90: ("Missing voltage L1", "phase L1 has no voltage"),
    91: ("Missing voltage L2", "phase L2 has no voltage"),
    92: ("Missing voltage L3", "phase L3 has no voltage"),
    93: ("Phase voltage restored", "the missing phase has voltage again"),
}

# Alarm register 1 (0.0.97.98.0.255, IDIS): a push reports one event per set bit.
ALARM_REGISTER_BITS: dict[int, tuple[str, str]] = {
    0: ("Clock invalid", "the clock lost its time and needs setting"),
    1: ("Replace battery", "the clock battery is low"),
    2: ("Power up", "the meter started after a loss of supply"),
    8: ("Program memory error", "the firmware memory failed its check"),
    9: ("RAM error", "the working memory failed its check"),
    10: ("NV memory error", "the data memory failed its check"),
    11: ("Measurement system error", "the metrology failed its self-test"),
    12: ("Watchdog error", "the meter restarted after a firmware fault"),
    13: ("Fraud attempt", "the meter detected tampering"),
}
ALARM_REGISTER_KINDS: dict[int, str] = {2: K.POWER_RESTORED}

EVENT_LOG_NAMES = {
    0: "Standard event log",
    1: "Fraud detection log",
    2: "Disconnector control log",
    3: "M-Bus event log",
    4: "Power quality log",
}
_EVENT_LOG = re.compile(r"^0-0:99\.98\.(\d+)\*255$")
_ALARM_REGISTER = re.compile(r"^0-0:97\.98\.(\d+)\*255$")


@dataclass(frozen=True, slots=True)
class EventDescription:
    """What an event is, for people: its name, what it means, and where the meter logged it."""

    name: str
    meaning: str
    source: str  # the log's name ("Standard event log", "Alarm register 1", ...)
    kind: str


@lru_cache(maxsize=256)
def _obis(log: str) -> str:
    try:
        return normalise(log)
    except ValueError:
        return log or ""


def _alarm_register(log: str) -> int | None:
    found = _ALARM_REGISTER.match(_obis(log))
    return int(found.group(1)) if found else None


def log_name(log: str) -> str:
    if log == DERIVED_LOG:
        return "Found by the head-end"
    found = _EVENT_LOG.match(_obis(log))
    if found:
        return EVENT_LOG_NAMES.get(int(found.group(1)), f"Event log {found.group(1)}")
    register = _alarm_register(log)
    if register is not None:
        return f"Alarm register {register + 1}"
    return log


def describe(code: int, log: str = "", meter_model=None) -> EventDescription:
    """Name and meaning of one event (its code in its log, for the meter's model)."""
    kind = kind_of(code, log, meter_model)
    source = log_name(log)
    if log == DERIVED_LOG:
        return EventDescription(label(kind), "", source, kind)
    if _alarm_register(log) == 0 and code in ALARM_REGISTER_BITS:
        return EventDescription(*ALARM_REGISTER_BITS[code], source, kind)
    if _alarm_register(log) is not None:
        return EventDescription(f"Alarm bit {code}", "not named for this register", source, kind)
    if code in STANDARD_NAMES and codes_for_model(meter_model).get(code) == STANDARD_CODES.get(
        code
    ):
        return EventDescription(*STANDARD_NAMES[code], source, kind)
    if kind != K.UNKNOWN:
        return EventDescription(label(kind), f"code {code} of this meter model", source, kind)
    return EventDescription(f"Event {code}", "not in this meter model's code table", source, kind)


def describe_alarm_event(alarm) -> str:
    """The name of an alarm's latest event (alarms keep its code, not its log)."""
    if alarm.last_code is None:
        return ""
    log = DERIVED_LOG if alarm.last_code in DERIVED_CODES else "0-0:99.98.0*255"
    return describe(alarm.last_code, log, getattr(alarm.meter, "meter_model", None)).name


def model_key(manufacturer: str, name: str) -> str:
    return f"{manufacturer} {name}"


@lru_cache(maxsize=256)
def _codes_for_key(key: str | None) -> dict[int, str]:
    table = dict(STANDARD_CODES)
    extra = getattr(settings, "AMI_EVENT_CODES", {}) or {}
    for code, kind in (extra.get(key, {}) if key else {}).items():
        if kind:
            table[int(code)] = EventKind(kind).value  # a typo fails loudly, not silently
        else:
            table.pop(int(code), None)
    return table


def codes_for_model(meter_model=None) -> dict[int, str]:
    """The code table of one meter model (the standard one, extended per model in settings)."""
    key = model_key(meter_model.manufacturer, meter_model.name) if meter_model else None
    return _codes_for_key(key)


def kind_of(code: int, log: str = "", meter_model=None) -> str:
    """The kind of one event: derived codes in their pseudo-log, alarm-register bits by bit,
    else the model's table."""
    if log == DERIVED_LOG:
        return DERIVED_CODES.get(code, K.UNKNOWN)
    if _alarm_register(log) is not None:
        return ALARM_REGISTER_KINDS.get(code, K.UNKNOWN) if _alarm_register(log) == 0 else K.UNKNOWN
    return codes_for_model(meter_model).get(code, K.UNKNOWN)


def label(kind: str) -> str:
    try:
        return EventKind(kind).label
    except ValueError:
        return kind


def clear_cache() -> None:
    """Forget the per-model tables (tests that change AMI_EVENT_CODES call this)."""
    _codes_for_key.cache_clear()
