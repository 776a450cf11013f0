"""Scripted incidents: events a simulated meter records (and pushes) on a fixed timetable.

The value model (`model.py`) gives every meter a few random-looking events per month; a
demo or a test that must *see* a power failure, a cover opened or a voltage sag at a known
moment gives the meter a `Script` instead: incidents at ``anchor + offset`` (and every
``period`` after it), each ending ``duration`` later with its restore code. Times are pure
functions of the anchor, so a test computes exactly which events the head-end must have.

The meter's event log (0.0.99.98.0.255) holds the model's events and the script's; the
fleet pushes the script's ``push`` incidents to the head-end as they happen
(`DlmsFleet.push_due`), a DataNotification carrying the event code
(0.0.96.11.0.255, the standard event log's latest entry) and the event's time.

`demo_fleet(count, anchor)` is the script of `make run`'s fleet (README, "Demo").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import model
from .dlms.meter import Fault, SimulatedMeter

# Event codes (DLMS/IDIS standard event log numbering; meters/alarms/events.py names them).
POWER_DOWN, POWER_UP = model.EVENT_POWER_DOWN, model.EVENT_POWER_UP
COVER_OPENED, COVER_CLOSED = 44, 45
MAGNETIC_FIELD, MAGNETIC_FIELD_GONE = 42, 43
VOLTAGE_SAG, VOLTAGE_NORMAL = model.EVENT_VOLTAGE_SAG, 77
REMOTE_DISCONNECTION = 61

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Incident:
    """`code` at ``anchor + offset_s`` (and every ``period_s`` after), `end_code` at
    ``duration_s`` later. A negative offset puts a one-off incident in the meter's past."""

    code: int
    offset_s: float
    end_code: int | None = None
    duration_s: float = 0.0
    period_s: float | None = None  # None: it happens once
    push: bool = True  # the meter pushes it to the head-end when it happens

    def __post_init__(self) -> None:
        if self.period_s is not None and self.period_s <= self.duration_s:
            raise ValueError("an incident must end before it happens again")

    def occurrences(self, anchor: datetime, start: datetime, end: datetime):
        """``(time, code)`` of this incident's events with time in ``[start, end]``."""
        first = anchor + timedelta(seconds=self.offset_s)
        if self.period_s is None:
            ks: range = range(1)
        else:
            # Cycles whose end may fall at or after `start`, up to the last starting by `end`.
            lo = math.floor(((start - first).total_seconds() - self.duration_s) / self.period_s)
            hi = math.floor((end - first).total_seconds() / self.period_s)
            ks = range(max(lo, 0), hi + 1)
        out = []
        for k in ks:
            at = first + timedelta(seconds=k * (self.period_s or 0))
            events = [(at, self.code)]
            if self.end_code is not None:
                events.append((at + timedelta(seconds=self.duration_s), self.end_code))
            out.extend(e for e in events if start <= e[0] <= end)
        return out


@dataclass(frozen=True, slots=True)
class Script:
    """A meter's incidents, relative to `anchor` (an aware UTC datetime)."""

    anchor: datetime
    incidents: tuple[Incident, ...] = ()
    relay_connected: bool = True  # the relay's state when the fleet starts

    def events(self, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
        """The script's event-log entries with time in ``[start, end]``, oldest first."""
        out = [e for i in self.incidents for e in i.occurrences(self.anchor, start, end)]
        return sorted(out)

    def pushes(self, after: datetime, until: datetime) -> list[tuple[datetime, int]]:
        """Events the meter pushes with time in ``(after, until]``, oldest first."""
        out = [
            e
            for i in self.incidents
            if i.push
            for e in i.occurrences(self.anchor, after, until)
            if e[0] > after
        ]
        return sorted(out)


def with_script(
    events: list[tuple[datetime, int]], script: Script | None, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """The model's events merged with a script's, in time order."""
    if script is None:
        return events
    return sorted(events + script.events(start, end))


# --- the demo fleet ---------------------------------------------------------------------------
#
# make run's 48 meters (meters/demo.py): per region 2 substations x 2 feeders x 2 transformers
# x 3 supply points, North first; meter index i (0-based) is serial 90000001 + i.


@dataclass(frozen=True, slots=True)
class DemoRole:
    index: int
    what: str
    script: tuple[Incident, ...] = ()
    relay_connected: bool = True
    clock_drift_s: float = 0.0
    fault: str | None = None


def _outage(offset_s: float) -> Incident:
    # Down for 35 minutes every hour: the last-gasp push opens the outage, power up closes it.
    return Incident(POWER_DOWN, offset_s, POWER_UP, duration_s=35 * 60, period_s=HOUR)


DEMO_ROLES: tuple[DemoRole, ...] = (
    *(
        DemoRole(
            i,
            "power failure every hour (North, transformer NS1F1T2: 3 of 3 meters)",
            (_outage(20),),
        )  # fmt: skip
        for i in (3, 4, 5)
    ),
    DemoRole(30, "power failure every hour, half an hour later (South)", (_outage(30 * 60 + 20),)),
    DemoRole(
        7,
        "meter cover opened (closed again after 2 h, every 6 h)",
        (Incident(COVER_OPENED, 40, COVER_CLOSED, duration_s=2 * HOUR, period_s=6 * HOUR),),
    ),
    DemoRole(
        27,
        "strong magnetic field (20 min, every 3 h)",
        (Incident(MAGNETIC_FIELD, 50, MAGNETIC_FIELD_GONE, duration_s=20 * 60, period_s=3 * HOUR),),
    ),
    DemoRole(
        10,
        "voltage sag (10 min, every hour)",
        (Incident(VOLTAGE_SAG, 60, VOLTAGE_NORMAL, duration_s=10 * 60, period_s=HOUR),),
    ),
    DemoRole(13, "clock 7 minutes fast", clock_drift_s=420.0),
    DemoRole(20, "never answers (communication lost)", fault="timeout"),
    DemoRole(
        40,
        "remotely disconnected 23 hours before the start, still consuming",
        (Incident(REMOTE_DISCONNECTION, -23 * HOUR, push=False),),
        relay_connected=False,
    ),
)


@dataclass
class DemoFleet:
    meters: list[SimulatedMeter]
    roles: dict[str, DemoRole] = field(default_factory=dict)  # serial -> role


# The demo grid (meters/demo.py): 3 meters per transformer, 2 transformers per feeder, in
# serial order; each transformer and feeder has a check meter (tests/meters/test_demo.py
# keeps these in step with the demo's grid).
POINTS_PER_TRANSFORMER, TRANSFORMERS_PER_FEEDER = 3, 2
TRANSFORMER_LOSS = dict(load_loss_permille=30, no_load_wh=10)  # 3 % + 40 W iron loss
FEEDER_LOSS = dict(load_loss_permille=12)  # the 11 kV line: 1.2 %
# Transformers (by index) with an unmetered load: NS1F2T1 (meters 7-9, 8 has its cover
# opened) and SS2F1T1 (meters 37-39).
UNMETERED = {2: 5000, 12: 5000}


def demo_check_meters(count: int, first_serial: int = 90000001) -> list[tuple[str, str, int]]:
    """The demo's check meters after its `count` meters: (serial, "transformer" or
    "feeder", index of the first meter below it), registered in `model.CHECK_METERS`.

    Per feeder: its transformers' check meters, then its own (which measures theirs plus
    the line's loss). Serials follow the meters' (`first_serial + count + i`)."""
    per_feeder = POINTS_PER_TRANSFORMER * TRANSFORMERS_PER_FEEDER
    out = []
    serial = first_serial + count
    for f in range(count // per_feeder):
        checks = []
        for t in range(TRANSFORMERS_PER_FEEDER):
            first = f * per_feeder + t * POINTS_PER_TRANSFORMER
            below = tuple(str(first_serial + first + p) for p in range(POINTS_PER_TRANSFORMER))
            index = f * TRANSFORMERS_PER_FEEDER + t
            model.CHECK_METERS[str(serial)] = model.CheckMeter(
                below, **TRANSFORMER_LOSS, unmetered_wh_per_day=UNMETERED.get(index, 0)
            )
            out.append((str(serial), "transformer", first))
            checks.append(str(serial))
            serial += 1
        model.CHECK_METERS[str(serial)] = model.CheckMeter(tuple(checks), **FEEDER_LOSS)
        out.append((str(serial), "feeder", f * per_feeder))
        serial += 1
    return out


def demo_fleet(count: int, anchor: datetime, *, first_serial: int = 90000001) -> DemoFleet:
    """`count` meters (default TEST keys) with the demo's roles applied by index, then the
    check meters of their transformers and feeders (`demo_check_meters`)."""
    meters = [SimulatedMeter(serial=str(first_serial + i)) for i in range(count)]
    meters += [SimulatedMeter(serial=s) for s, _level, _i in demo_check_meters(count, first_serial)]
    roles = {}
    for role in DEMO_ROLES:
        if role.index >= count:
            continue
        meter = meters[role.index]
        if role.script or not role.relay_connected:
            meter.script = Script(anchor, role.script, role.relay_connected)
        meter.clock_drift_s = role.clock_drift_s
        meter.fault = Fault(role.fault) if role.fault else None  # type: ignore[arg-type]
        roles[meter.serial] = role
    return DemoFleet(meters, roles)
