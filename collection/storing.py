"""From a meter's outcome to the store: profiles, registers and events through ingest."""

from __future__ import annotations

from decimal import Decimal

from .reader import MeterOutcome


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def summary(outcome: MeterOutcome) -> dict:
    """A JSON-able picture of what the meter said (shown for on-demand reads)."""
    data: dict = {}
    if outcome.clock is not None:
        data["clock"] = {
            "meter_time": outcome.clock.meter_time.isoformat()
            if outcome.clock.meter_time
            else None,
            "system_time": outcome.clock.system_time.isoformat(),
            "drift_s": outcome.clock.drift_seconds,
            "set": outcome.clock_set,
        }
    if outcome.registers:
        data["registers"] = [
            {
                "obis": r.obis,
                "value": _num(r.value),
                "unit": r.unit,
                "capture_time": r.capture_time.isoformat() if r.capture_time else None,
            }
            for r in outcome.registers
        ]
    if outcome.profiles:
        data["profiles"] = [
            {"profile": p.profile, "channels": [c.obis for c in p.channels], "rows": len(p.rows)}
            for p in outcome.profiles
        ]
    if outcome.events:
        data["events"] = [
            {"timestamp": e.timestamp.isoformat(), "code": e.code, "log": e.log}
            for e in outcome.events[:200]
        ]
    if outcome.instantaneous is not None:
        inst = outcome.instantaneous
        data["instantaneous"] = {
            "read_at": inst.read_at.isoformat(),
            "voltages": [_num(v) for v in inst.voltages],
            "currents": [_num(v) for v in inst.currents],
            "angles": [_num(v) for v in inst.angles],
            "frequency": _num(inst.frequency),
            "active_power": _num(inst.active_power),
        }
    if outcome.relay is not None:
        data["relay"] = {
            "connected": outcome.relay.connected,
            "control_state": outcome.relay.control_state,
        }
    return data


def store_outcome(outcome: MeterOutcome) -> tuple[int, dict]:
    """Store what a meter gave; returns (values stored, summary). Called inside a transaction."""
    stored = 0
    return stored, summary(outcome)
