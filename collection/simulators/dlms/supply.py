"""The supply behind a simulated meter's relay: what the meter records while it is open.

``model.py`` says what a customer would use at any time; a meter whose relay is open
(disconnected or ready for reconnection) records none of it. ``MeterState.off_spans`` holds
the intervals during which the relay was open, as ``[first, end)`` interval indexes (``end``
None while it still is); the interval in progress when the relay opens records nothing, the
one in progress when it closes records in full (the model has 15-minute granularity). Every
value a meter reports (energy and tariff registers, load profile, last interval, active power
and currents) goes through here.

A meter whose relay is bypassed (``SimulatedMeter.relay_bypassed``: tampering, a faulty
relay) goes on recording what is used while it reads open, which is what the head-end's
"disconnected but consuming" alarm looks for.

Disconnect control (class 70) state machine, as the Blue Book's control modes have it (the
simulator implements remote transitions and the customer's button):

* mode 0: always connected, remote commands refused;
* odd modes (1, 3, 5): remote_reconnect only arms the meter (disconnected ->
  ready_for_reconnection); the customer's button connects it;
* even modes (2, 4, 6): remote_reconnect connects at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .. import model

if TYPE_CHECKING:
    from .meter import MeterState, SimulatedMeter

DISCONNECTED, CONNECTED, READY = 0, 1, 2
CONTROL_MODES = range(7)


class Refused(Exception):
    """The control mode does not allow this transition."""


def _open_at(state: MeterState, now: datetime) -> None:
    if not state.off_spans or state.off_spans[-1][1] is not None:
        state.off_spans.append([model.completed_intervals(now), None])


def _close_at(state: MeterState, now: datetime) -> None:
    if state.off_spans and state.off_spans[-1][1] is None:
        state.off_spans[-1][1] = model.completed_intervals(now)


def remote_disconnect(state: MeterState, now: datetime) -> None:
    if state.control_mode == 0:
        raise Refused("control mode 0: always connected")
    state.control_state = DISCONNECTED
    _open_at(state, now)


def remote_reconnect(state: MeterState, now: datetime) -> None:
    if state.control_mode == 0:
        raise Refused("control mode 0: always connected")
    if state.control_state == CONNECTED:
        return
    if state.control_mode % 2:  # 1, 3, 5: the customer reconnects
        state.control_state = READY
        return
    state.control_state = CONNECTED
    _close_at(state, now)


def local_disconnect(state: MeterState, now: datetime) -> None:
    """The meter opens its relay by itself (a limiter trip): no control-mode check."""
    state.control_state = DISCONNECTED
    _open_at(state, now)


def local_reconnect(state: MeterState, now: datetime) -> None:
    """The meter closes its relay by itself (end of a trip or of a lockout)."""
    state.control_state = CONNECTED
    _close_at(state, now)


def press_button(state: MeterState, now: datetime) -> bool:
    """The customer's manual reconnection: ready -> connected. Whether it connected."""
    if state.control_state != READY:
        return False
    state.control_state = CONNECTED
    _close_at(state, now)
    return True


def is_off(meter: SimulatedMeter, state: MeterState, k: int) -> bool:
    """Whether interval ``k`` records nothing."""
    if meter.relay_bypassed:
        return False
    return any(a <= k and (b is None or k < b) for a, b in state.off_spans)


def _lost(meter: SimulatedMeter, state: MeterState, fn, n: int) -> int:
    """What ``fn(n)`` (a cumulative over the first n intervals) left unrecorded."""
    if meter.relay_bypassed:
        return 0
    lost = 0
    for a, b in state.off_spans:
        end = n if b is None else min(b, n)
        if end > a:
            lost += fn(end) - fn(a)
    return lost


def cumulative(meter: SimulatedMeter, state: MeterState, channel: int, n: int) -> int:
    """Energy recorded over the first ``n`` intervals of ``channel``."""
    serial = meter.serial
    total = model.cumulative(serial, channel, n)
    if not state.off_spans:
        return total
    return total - _lost(meter, state, lambda i: model.cumulative(serial, channel, i), n)


def interval_value(meter: SimulatedMeter, state: MeterState, channel: int, k: int) -> int:
    return 0 if is_off(meter, state, k) else model.interval_value(meter.serial, channel, k)


def energy_register(meter: SimulatedMeter, state: MeterState, channel: int, t: datetime) -> int:
    return cumulative(meter, state, channel, model.completed_intervals(t))


def tariff_register(meter: SimulatedMeter, state: MeterState, tariff: int, t: datetime) -> int:
    total = model.tariff_register(meter.serial, tariff, t)
    if not state.off_spans:
        return total

    def at(i: int) -> int:
        return model.tariff_register(meter.serial, tariff, model.interval_end(i - 1))

    return total - _lost(meter, state, at, model.completed_intervals(t))


def instantaneous(meter: SimulatedMeter, state: MeterState, obis: str, t: datetime) -> int:
    """Active power and currents are zero while nothing flows; voltages stay."""
    if obis in model.LOAD_QUANTITIES and is_off(meter, state, model.completed_intervals(t)):
        return 0
    return model.instantaneous(meter.serial, obis, t)
