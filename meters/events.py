"""One event vocabulary: what a meter's event code means, whatever the meter calls it.

Every stored event keeps the meter's own code (`EventRecord.code`, in its log); this module
says which `EventKind` that code is. The default table follows the DLMS/IDIS standard event,
fraud-detection, disconnector and power-quality logs as the simulated fleet uses them
(collection/simulators/model.py). A meter model whose firmware numbers events its own way
extends the table in settings, keyed by "manufacturer name" of its `MeterModel`:

    AMI_EVENT_CODES = {"Acme AM550": {201: "terminal_cover_open", 202: "terminal_cover_closed"}}

(`codes_for_model` merges that over the default; an entry mapping to "" hides a code.)

Derived events (meters/alarm_tasks.py) are computed from data rather than read from a log;
they are stored as `EventRecord`s in the pseudo-log `DERIVED_LOG` with the codes below, so
they travel the same path (`alarm_engine.evaluate_events`) as the meter's own events.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db import models

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
    # Derived from data (meters/alarm_tasks.py), not from a meter's log.
    METER_UNREACHABLE = "meter_unreachable", "Meter unreachable"
    METER_REACHABLE = "meter_reachable", "Meter reachable again"
    CLOCK_DRIFT = "clock_drift", "Clock drift over limit"
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
    """The kind of one event: derived codes in their pseudo-log, else the model's table."""
    if log == DERIVED_LOG:
        return DERIVED_CODES.get(code, K.UNKNOWN)
    return codes_for_model(meter_model).get(code, K.UNKNOWN)


def label(kind: str) -> str:
    try:
        return EventKind(kind).label
    except ValueError:
        return kind


def clear_cache() -> None:
    """Forget the per-model tables (tests that change AMI_EVENT_CODES call this)."""
    _codes_for_key.cache_clear()
