"""What an on-demand read returned (`MeterReadResult.data`, see `storing.summary`), arranged as
the run page's tables: clock, registers with names and units, profiles, events with their
meaning, instantaneous values per phase, the relay."""

from __future__ import annotations

from meters.alarms import events as event_kinds
from meters.models import Channel


def tables(data: dict, meter) -> dict:
    """The sections present in `data`, each ready for `collection/_reading.html`."""
    if not data:
        return {}
    names = dict(
        Channel.objects.filter(meter_model_id=meter.meter_model_id).values_list("obis", "name")
    )
    shown: dict = {}
    if "clock" in data:
        shown["clock"] = data["clock"]
    if data.get("registers"):
        shown["registers"] = [
            {**r, "name": names.get(r["obis"], r["obis"])} for r in data["registers"]
        ]
    if data.get("profiles"):
        shown["profiles"] = [
            {**p, "channels": [names.get(obis, obis) for obis in p["channels"]]}
            for p in data["profiles"]
        ]
    if data.get("events"):
        model = meter.meter_model
        shown["events"] = []
        for e in data["events"]:
            kind = event_kinds.kind_of(e["code"], e.get("log", ""), model)
            shown["events"].append({**e, "label": event_kinds.label(kind)})
    inst = data.get("instantaneous")
    if inst:
        phases = []
        for i, voltage in enumerate(inst.get("voltages") or []):
            currents, angles = inst.get("currents") or [], inst.get("angles") or []
            phases.append(
                {
                    "phase": f"L{i + 1}",
                    "voltage": voltage,
                    "current": currents[i] if i < len(currents) else None,
                    "angle": angles[i] if i < len(angles) else None,
                }
            )
        shown["instantaneous"] = {**inst, "phases": phases}
    if "relay" in data:
        shown["relay"] = data["relay"]
    return shown
