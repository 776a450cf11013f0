"""Deterministic value model of the simulated meter fleet.

Every value a simulated meter reports is a pure function of ``(serial, quantity, time)``:
the simulator computes values on demand (nothing is stored per meter), and an end-to-end
test can call the very same functions to know exactly what the head-end must have stored.

Conventions (all times are aware UTC datetimes; naive datetimes are rejected):

* ``EPOCH`` (2024-01-01T00:00Z, a Monday) is the start of every meter's history.  Nothing
  is measured before it: profiles are empty and registers are 0 at or before the epoch.
* Load profile: 15-minute intervals.  Interval ``k`` covers ``[EPOCH + k*900 s,
  EPOCH + (k+1)*900 s)``; its profile entry is stamped with the interval *end*.  Four
  channels, integer Wh / varh per interval (see ``CHANNELS``).
* Energy registers (``x.8.0``) equal EXACTLY the sum of their channel's intervals from the
  epoch up to the last *completed* interval at time ``t`` (``completed_intervals(t)``).
  Internally a channel is a closed-form integer cumulative function ``cumulative(n)``
  and an interval is the difference of two cumulative values, so both are O(1).
* Tariff registers ``1.8.1`` (T1, day: interval start in [07:00, 23:00) UTC) and
  ``1.8.2`` (T2, night: the rest) are the sums of the import intervals in those windows;
  ``1.8.1 + 1.8.2 == 1.8.0`` always.
* Maximum demand ``1.6.0``: the highest 15-minute average import power (W = 4 * Wh of an
  interval) among the completed intervals of the current calendar month (UTC), with the
  end of that interval as capture time; ``(0, start of month)`` when none completed yet.
* Instantaneous values are piecewise constant per UTC minute (seconds are ignored).
  They are returned as *raw* integers; the scaler is in ``INSTANTANEOUS``.
* Events: at most one "incident" per UTC day, chosen by a hash of ``(serial, day)``;
  a power failure yields two entries (power down + power up).
* The profile and the event log use the true time, never the meter's (drifting) clock.

The model depends only on the serial string, so a test needs no simulator to compute it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
INTERVAL_S = 900
INTERVALS_PER_DAY = 96
_WEEK = 7 * INTERVALS_PER_DAY

# channel number -> (profile channel OBIS, energy register OBIS, unit text)
CHANNELS: dict[int, tuple[str, str, str]] = {
    1: ("1.0.1.29.0.255", "1.0.1.8.0.255", "Wh"),  # active energy import (+A)
    2: ("1.0.2.29.0.255", "1.0.2.8.0.255", "Wh"),  # active energy export (-A)
    3: ("1.0.3.29.0.255", "1.0.3.8.0.255", "varh"),  # reactive energy import (+R)
    4: ("1.0.4.29.0.255", "1.0.4.8.0.255", "varh"),  # reactive energy export (-R)
}
PROFILE_OBIS = {ch: v[0] for ch, v in CHANNELS.items()}
ENERGY_OBIS = {ch: v[1] for ch, v in CHANNELS.items()}
TARIFF_OBIS = {1: "1.0.1.8.1.255", 2: "1.0.1.8.2.255"}
T1_FIRST, T1_END = 28, 92  # interval-of-day indexes of 07:00 and 23:00

# OBIS -> (scaler, unit text) of the instantaneous quantities; raw value * 10**scaler.
INSTANTANEOUS: dict[str, tuple[int, str]] = {
    "1.0.32.7.0.255": (-1, "V"),  # voltage L1
    "1.0.52.7.0.255": (-1, "V"),  # voltage L2
    "1.0.72.7.0.255": (-1, "V"),  # voltage L3
    "1.0.31.7.0.255": (-2, "A"),  # current L1
    "1.0.51.7.0.255": (-2, "A"),  # current L2
    "1.0.71.7.0.255": (-2, "A"),  # current L3
    "1.0.14.7.0.255": (-2, "Hz"),  # supply frequency
    "1.0.1.7.0.255": (0, "W"),  # active power import (+P)
    "1.0.81.7.1.255": (-1, "deg"),  # angle U(L2) - U(L1)
    "1.0.81.7.2.255": (-1, "deg"),  # angle U(L3) - U(L1)
    "1.0.81.7.4.255": (-1, "deg"),  # angle I(L1) - U(L1)
    "1.0.81.7.15.255": (-1, "deg"),  # angle I(L2) - U(L2)
    "1.0.81.7.26.255": (-1, "deg"),  # angle I(L3) - U(L3)
}

# Event codes of the event log 0.0.99.98.0.255 (simulator codes, IDIS-inspired).
EVENT_POWER_DOWN = 1
EVENT_POWER_UP = 2
EVENT_COVER_OPENED = 40
EVENT_MAGNETIC_TAMPER = 42
EVENT_REVERSE_FLOW = 48
EVENT_VOLTAGE_SAG = 76
EVENT_VOLTAGE_SWELL = 78
EVENT_NAMES = {
    EVENT_POWER_DOWN: "power failure",
    EVENT_POWER_UP: "power restored",
    EVENT_COVER_OPENED: "cover opened",
    EVENT_MAGNETIC_TAMPER: "magnetic tamper",
    EVENT_REVERSE_FLOW: "reverse flow",
    EVENT_VOLTAGE_SAG: "voltage sag",
    EVENT_VOLTAGE_SWELL: "voltage swell",
}
_INCIDENTS = (
    EVENT_POWER_DOWN,
    EVENT_COVER_OPENED,
    EVENT_MAGNETIC_TAMPER,
    EVENT_REVERSE_FLOW,
    EVENT_VOLTAGE_SAG,
    EVENT_VOLTAGE_SWELL,
)
EVENT_DAY_PERCENT = 25  # share of days with an incident

_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed 64-bit integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


@lru_cache(maxsize=65536)
def serial_key(serial: str) -> int:
    """64-bit key of a serial (BLAKE2b), the root of all per-meter randomness."""
    return int.from_bytes(hashlib.blake2b(serial.encode(), digest_size=8).digest(), "big")


def _h(serial: str, *parts: int) -> int:
    x = serial_key(serial)
    for p in parts:
        x = _mix(x ^ (p & _M64))
    return x


# --- shapes: integer weights per interval of the week; cumulative tables --------------------


def _weights(kind: str) -> list[int]:
    out = []
    day_factor = (100, 100, 100, 100, 105, 125, 120)  # Mon..Sun
    for d in range(7):
        for j in range(INTERVALS_PER_DAY):
            x = (j + 0.5) / INTERVALS_PER_DAY
            if kind == "load":  # evening peak, night trough
                w = 1000 * (1.2 - math.cos(2 * math.pi * (x - 0.30))) * day_factor[d] / 100
            elif kind == "solar":  # zero before 06:00 and after 18:00, peak at noon
                w = max(0.0, -1000 * math.cos(2 * math.pi * x))
            else:  # "flat-ish" reactive export
                w = 1000 * (1.1 + math.sin(2 * math.pi * x))
            out.append(int(round(w)))
    return out


def _cumulative_table(weights: list[int]) -> list[int]:
    table = [0]
    for w in weights:
        table.append(table[-1] + w)
    return table


_SHAPES = {kind: _cumulative_table(_weights(kind)) for kind in ("load", "solar", "react")}


def _shape_cum(kind: str, k: int) -> int:
    table = _SHAPES[kind]
    weeks, rest = divmod(k, _WEEK)
    return weeks * table[_WEEK] + table[rest]


@lru_cache(maxsize=65536)
def meter_parameters(serial: str) -> dict[int, tuple[int, int, str]]:
    """Per channel ``(baseline Wh per interval, shaped Wh per week, shape)`` of a meter."""
    h = _h(serial, 1)
    daily = 4000 + h % 9000  # 4..13 kWh/day of shaped consumption
    base1 = 8 + (h >> 16) % 25  # 32..128 W standing load
    has_pv = (h >> 32) % 100 < 35
    pv_daily = (6000 + (h >> 40) % 14000) if has_pv else 0
    return {
        1: (base1, 7 * daily, "load"),
        2: (0, 7 * pv_daily, "solar"),
        3: (2 + base1 // 3, 7 * daily * 3 // 10, "load"),
        4: (1, 7 * 400, "react"),
    }


@dataclass(frozen=True)
class CheckMeter:
    """A check meter (at a transformer or a feeder head): it measures what the meters `below`
    take (customer meters, or the check meters of the transformers below a feeder) plus the
    losses on the way, so an energy balance of the simulated fleet has real figures.

    Import = sum of the import below * (1000 + load_loss_permille) / 1000 + no-load loss per
    interval + an unmetered load (an illegal connection with the evening load shape);
    export = sum of the export below * (1000 - load_loss_permille) / 1000 (solar export
    loses on its way back). Both stay exact integer cumulative functions, so registers equal
    the sum of the intervals as for every simulated meter."""

    below: tuple[str, ...]
    load_loss_permille: int = 0
    no_load_wh: int = 0
    unmetered_wh_per_day: int = 0


# serial -> its check meter rule; filled by the demo fleet (`incidents.demo_fleet`) and by
# anything that must compute the same values (the demo's registration, tests).
CHECK_METERS: dict[str, CheckMeter] = {}


def _check_cum(check: CheckMeter, channel: int, k: int) -> int:
    below = sum(_raw_cum(s, channel, k) for s in check.below)
    if channel == 1:
        unmetered = 7 * check.unmetered_wh_per_day * _shape_cum("load", k)
        return (
            below * (1000 + check.load_loss_permille) // 1000
            + check.no_load_wh * k
            + unmetered // _SHAPES["load"][_WEEK]
        )
    if channel == 2:
        return below * (1000 - check.load_loss_permille) // 1000
    return below


def _raw_cum(serial: str, channel: int, k: int) -> int:
    check = CHECK_METERS.get(serial)
    if check is not None:
        return _check_cum(check, channel, k)
    base, weekly, kind = meter_parameters(serial)[channel]
    table = _SHAPES[kind]
    noise = _h(serial, 100 + channel, k) % (base + 1) if base else 0
    return base * k + weekly * _shape_cum(kind, k) // table[_WEEK] + noise


def cumulative(serial: str, channel: int, n: int) -> int:
    """Sum of the first ``n`` intervals of ``channel`` (intervals 0 .. n-1), in Wh/varh."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel}")
    if n <= 0:
        return 0
    return _raw_cum(serial, channel, n) - _raw_cum(serial, channel, 0)


def cumulatives(serial: str, channel: int, ns: Sequence[int]) -> list[int]:
    """``cumulative(serial, channel, n)`` for each of ``ns`` (the epoch's value once)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel}")
    zero = _raw_cum(serial, channel, 0)
    return [_raw_cum(serial, channel, n) - zero if n > 0 else 0 for n in ns]


def interval_value(serial: str, channel: int, k: int) -> int:
    """Energy of interval ``k`` (``[EPOCH + 900k, EPOCH + 900(k+1))``); always >= 0."""
    if k < 0:
        return 0
    return _raw_cum(serial, channel, k + 1) - _raw_cum(serial, channel, k)


def _check(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("naive datetime: the model works in aware UTC datetimes")
    return t


def completed_intervals(t: datetime) -> int:
    """Number of intervals completed at ``t`` (the index of the interval in progress)."""
    seconds = (_check(t) - EPOCH).total_seconds()
    return max(0, math.floor(seconds / INTERVAL_S))


def interval_end(k: int) -> datetime:
    """Capture time (end) of interval ``k``."""
    return EPOCH + timedelta(seconds=INTERVAL_S * (k + 1))


def profile_entries(
    serial: str, start: datetime, end: datetime
) -> list[tuple[datetime, int, int, int, int]]:
    """Load-profile entries whose capture time is in ``[start, end]`` (inclusive).

    Only completed intervals exist: pass ``end=now`` to get what the meter has.
    Each entry is ``(capture_time, ch1, ch2, ch3, ch4)``.
    """
    first = max(0, math.ceil((_check(start) - EPOCH).total_seconds() / INTERVAL_S) - 1)
    last = math.floor((_check(end) - EPOCH).total_seconds() / INTERVAL_S) - 1
    return [profile_entry(serial, k) for k in range(first, last + 1)]


def profile_entry(serial: str, k: int) -> tuple[datetime, int, int, int, int]:
    """Entry of interval ``k``: ``(end time, ch1, ch2, ch3, ch4)``."""
    return (interval_end(k),) + tuple(interval_value(serial, ch, k) for ch in (1, 2, 3, 4))


def energy_register(serial: str, channel: int, t: datetime) -> int:
    """Value of the energy register of ``channel`` (``1.0.c.8.0.255``) at ``t``, Wh/varh."""
    return cumulative(serial, channel, completed_intervals(t))


def tariff_register(serial: str, tariff: int, t: datetime) -> int:
    """Import energy of tariff 1 (day) or 2 (night) at ``t``; T1 + T2 == 1.8.0."""
    if tariff not in (1, 2):
        raise ValueError("tariff must be 1 or 2")
    return tariff_registers(serial, [t])[0][tariff - 1]


def tariff_registers(serial: str, times: Sequence[datetime]) -> list[tuple[int, int]]:
    """``(T1, T2)`` at each of ``times``, in ONE pass over the days since the epoch (a
    tariff register sums every day's window: the demo's history asks a year of month
    bounds of each meter at once)."""
    ns = [completed_intervals(t) for t in times]
    out: list[tuple[int, int]] = [(0, 0)] * len(ns)
    whole, d = 0, 0  # T1 of the days whose day window ended by the current n
    for i in sorted(range(len(ns)), key=ns.__getitem__):
        n = ns[i]
        while d * INTERVALS_PER_DAY + T1_END <= n:  # differences of _raw_cum: as cumulative's
            a = d * INTERVALS_PER_DAY + T1_FIRST
            whole += _raw_cum(serial, 1, a + T1_END - T1_FIRST) - _raw_cum(serial, 1, a)
            d += 1
        a = d * INTERVALS_PER_DAY + T1_FIRST
        t1 = whole + (cumulative(serial, 1, n) - cumulative(serial, 1, a) if a < n else 0)
        out[i] = (t1, cumulative(serial, 1, n) - t1)
    return out


def tariff_of_interval(k: int) -> int:
    """Tariff (1 day / 2 night) an interval is billed in."""
    return 1 if T1_FIRST <= k % INTERVALS_PER_DAY < T1_END else 2


def register_value(serial: str, obis: str, t: datetime) -> int:
    """Value of any energy/tariff register or instantaneous quantity by OBIS code."""
    for ch, (_p, reg, _u) in CHANNELS.items():
        if obis == reg:
            return energy_register(serial, ch, t)
    for tariff, reg in TARIFF_OBIS.items():
        if obis == reg:
            return tariff_register(serial, tariff, t)
    if obis in INSTANTANEOUS:
        return instantaneous(serial, obis, t)
    raise KeyError(obis)


def _month_start(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def max_demand(serial: str, t: datetime) -> tuple[int, datetime]:
    """``(W, capture time)`` of the maximum 15-min import demand this month up to ``t``."""
    start = max(_month_start(_check(t)), EPOCH)
    first = completed_intervals(start)
    n = completed_intervals(t)
    best, best_k = -1, None
    before = _raw_cum(serial, 1, first)
    for k in range(first, n):  # interval_value, each cumulative value computed once
        after = _raw_cum(serial, 1, k + 1)
        if after - before > best:
            best, best_k = after - before, k
        before = after
    if best_k is None:
        return 0, start
    return best * 4, interval_end(best_k)


# Instantaneous quantities that are zero while no current flows (active power, currents).
LOAD_QUANTITIES = frozenset({"1.0.1.7.0.255", "1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255"})


def instantaneous(serial: str, obis: str, t: datetime) -> int:
    """Raw integer of an instantaneous quantity (scale with ``INSTANTANEOUS[obis][0]``)."""
    minute = math.floor((_check(t) - EPOCH).total_seconds() / 60)
    if obis in ("1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255"):
        phase = {"1.0.32.7.0.255": 1, "1.0.52.7.0.255": 2, "1.0.72.7.0.255": 3}[obis]
        return 2250 + _h(serial, 200 + phase, minute) % 110  # 225.0 .. 235.9 V
    if obis == "1.0.14.7.0.255":
        return 4990 + _h(serial, 210, minute) % 21  # 49.90 .. 50.10 Hz
    if obis == "1.0.1.7.0.255":
        return 4 * interval_value(serial, 1, completed_intervals(t))
    if obis == "1.0.81.7.1.255":
        return 1200
    if obis == "1.0.81.7.2.255":
        return 2400
    if obis in ("1.0.81.7.4.255", "1.0.81.7.15.255", "1.0.81.7.26.255"):
        phase = {"1.0.81.7.4.255": 1, "1.0.81.7.15.255": 2, "1.0.81.7.26.255": 3}[obis]
        return 50 + _h(serial, 220 + phase, minute) % 200  # 5.0 .. 24.9 degrees lagging
    if obis in ("1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255"):
        phase = {"1.0.31.7.0.255": 1, "1.0.51.7.0.255": 2, "1.0.71.7.0.255": 3}[obis]
        volt = {1: "1.0.32.7.0.255", 2: "1.0.52.7.0.255", 3: "1.0.72.7.0.255"}[phase]
        ang = {1: "1.0.81.7.4.255", 2: "1.0.81.7.15.255", 3: "1.0.81.7.26.255"}[phase]
        power_w = instantaneous(serial, "1.0.1.7.0.255", t) / 3
        u = instantaneous(serial, volt, t) / 10
        cos_phi = math.cos(math.radians(instantaneous(serial, ang, t) / 10))
        return round(100 * power_w / (u * cos_phi))
    raise KeyError(obis)


# --- event log -----------------------------------------------------------------------------


def _day_events(serial: str, day: int) -> list[tuple[datetime, int]]:
    h = _h(serial, 300, day)
    if h % 100 >= EVENT_DAY_PERCENT:
        return []
    kind = _INCIDENTS[(h >> 8) % len(_INCIDENTS)]
    at = EPOCH + timedelta(days=day, seconds=(h >> 16) % 86000)
    if kind == EVENT_POWER_DOWN:
        back = at + timedelta(seconds=30 + (h >> 40) % 360)
        return [(at, EVENT_POWER_DOWN), (back, EVENT_POWER_UP)]
    return [(at, kind)]


def events(serial: str, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """Event-log entries ``(time, code)`` with time in ``[start, end]`` (inclusive)."""
    if _check(end) < EPOCH:
        return []
    first_day = max(0, (max(_check(start), EPOCH) - EPOCH).days - 1)
    last_day = (end - EPOCH).days
    out = []
    for d in range(first_day, last_day + 1):
        out.extend(e for e in _day_events(serial, d) if start <= e[0] <= end)
    return out


def event_count(serial: str, t: datetime) -> int:
    """Number of event-log entries recorded up to ``t``."""
    return len(events(serial, EPOCH, t))
