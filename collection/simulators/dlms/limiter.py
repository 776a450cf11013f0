"""The load limiter of a simulated meter (class 71) and what it does to the supply.

The limiter watches the active power import (``1.0.1.7.0.255``, W, the model's value while
the relay is closed). Above the threshold in force (the emergency threshold while an
emergency profile this meter obeys is active, else the normal one) for at least the minimum
over-threshold duration, it **trips**: the relay opens (disconnect control reads
"disconnected") and the meter records nothing while it is open (``supply.py``). Under the
threshold for the minimum under-threshold duration (nothing flows while it is open, so that
counts from the trip) it reconnects by itself, at most ``reconnect_count`` times in a row;
the trip after that **locks it out** for ``lockout_s`` seconds (0: until a remote
reconnect), after which it reconnects and the count starts again. A remote reconnect ends a
trip or a lockout at once and starts the count again.

The reconnect count and the lockout time are manufacturer-specific objects of the simulated
meter (class 1, ``0-0:128.71.1*255`` unsigned and ``0-0:128.71.2*255`` double-long-unsigned
seconds): class 71 itself has neither.

Evaluation is lazy and deterministic: each request first advances the limiter minute by
minute from where it last stopped to the request's time (the model's power is constant
within a minute), so what a meter reports never depends on when it was asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .. import model
from . import supply

if TYPE_CHECKING:
    from .meter import MeterState, SimulatedMeter

MONITORED = (3, "1.0.1.7.0.255", 2)  # active power import, value
STEP = timedelta(seconds=60)
MAX_CATCH_UP = timedelta(days=62)
FOREVER = datetime.max.replace(tzinfo=UTC)  # a meter left alone longer is taken as unchanged before


@dataclass(slots=True)
class LimiterState:
    """Settings (as written) and the trip state of one meter's limiter."""

    normal: int | None = None  # W; None: never set (the limiter is off)
    emergency: int | None = None
    min_over_s: int = 0
    min_under_s: int = 0
    profile_id: int = 0
    activation: datetime | None = None
    duration_s: int = 0
    groups: tuple[int, ...] = ()
    reconnect_count: int = 0
    lockout_s: int = 0
    evaluated: datetime | None = None  # advanced up to here
    over_since: datetime | None = None
    tripped_at: datetime | None = None  # the relay is open because of the limiter
    trips: int = 0  # trips since the last reconnection by hand or the end of a lockout
    log: list[tuple[datetime, str]] = field(default_factory=list)  # ("trip"|"reconnect"|...)


def emergency_active(lim: LimiterState, t: datetime) -> bool:
    if lim.activation is None or lim.profile_id not in lim.groups:
        return False
    return lim.activation <= t < lim.activation + timedelta(seconds=lim.duration_s)


def threshold(lim: LimiterState, t: datetime) -> int | None:
    if lim.emergency is not None and emergency_active(lim, t):
        return lim.emergency
    return lim.normal


def locked_out(lim: LimiterState) -> bool:
    return lim.tripped_at is not None and lim.trips > lim.reconnect_count


def settings_changed(state: MeterState, now: datetime) -> None:
    """A setting was written: evaluate from now on (history before it stands)."""
    lim = state.limiter
    if lim.evaluated is None or lim.evaluated > now:
        lim.evaluated = now


def remote_reconnected(state: MeterState) -> None:
    """A remote reconnect ends a trip or a lockout and starts the count again."""
    lim = state.limiter
    lim.tripped_at, lim.over_since, lim.trips = None, None, 0


def advance(meter: SimulatedMeter, state: MeterState, now: datetime) -> None:
    """Run the limiter from where it stopped up to ``now``.

    Minute by minute, but a stretch where nothing can change (the load is constant within a
    15-minute interval; a trip waits for its time; an open relay waits for a remote command,
    which comes with a request) is passed in one go, never beyond the first minute after
    ``now``.
    """
    lim = state.limiter
    if lim.normal is None or lim.evaluated is None or now < lim.evaluated:
        return
    t = max(lim.evaluated, now - MAX_CATCH_UP)
    while t <= now:
        quiet_until = _step(meter, state, lim, t)
        steps = 1
        if quiet_until is not None and quiet_until > t + STEP:
            steps = min(-(-(quiet_until - t) // STEP), (now - t) // STEP + 1)
        t += steps * STEP
    lim.evaluated = t


def _step(
    meter: SimulatedMeter, state: MeterState, lim: LimiterState, t: datetime
) -> datetime | None:
    """One minute of the limiter at ``t``; returns until when nothing can change (None: the
    next minute may)."""
    if lim.tripped_at is not None:
        if state.control_state == supply.CONNECTED:  # reconnected remotely meanwhile
            remote_reconnected(state)
            return None
        if locked_out(lim):
            if lim.lockout_s <= 0:
                return FOREVER
            due = lim.tripped_at + timedelta(seconds=lim.lockout_s)
        else:
            due = lim.tripped_at + timedelta(seconds=lim.min_under_s)
        if t < due:
            return due
        if locked_out(lim):
            lim.trips = 0
        supply.local_reconnect(state, t)
        lim.tripped_at, lim.over_since = None, None
        lim.log.append((t, "reconnect"))
        return None
    if state.control_state != supply.CONNECTED:
        lim.over_since = None
        return FOREVER  # until a remote command, which comes with a request
    limit = threshold(lim, t)
    power = model.instantaneous(meter.serial, MONITORED[1], t)
    if limit is None or power <= limit:
        lim.over_since = None
        return _load_or_profile_changes(lim, t)
    if lim.over_since is None:
        lim.over_since = t
    if t - lim.over_since >= timedelta(seconds=lim.min_over_s):
        supply.local_disconnect(state, t)
        lim.tripped_at, lim.over_since = t, None
        lim.trips += 1
        lim.log.append((t, "lockout" if locked_out(lim) else "trip"))
    return None


def _load_or_profile_changes(lim: LimiterState, t: datetime) -> datetime:
    """The next time the load (the end of the 15-minute interval) or the threshold in force
    (an emergency profile's start or end) can change."""
    interval = timedelta(seconds=model.INTERVAL_S)
    nxt = model.EPOCH + (model.completed_intervals(t) + 1) * interval
    if lim.activation is not None:
        for edge in (lim.activation, lim.activation + timedelta(seconds=lim.duration_s)):
            if t < edge < nxt:
                nxt = edge
    return nxt
