"""Which tariff register a simulated meter's import energy accumulates in: its active activity
calendar (class 20), its special days (class 11) and its clock's time zone and daylight-saving
rules (class 8), as a meter switches tariffs.

A meter left as it came (the default calendar SIM-TOU1: 07:00-23:00 tariff 1, the rest 2;
time zone 0, no DST, no special day) switches exactly as ``model.tariff_register`` says, and
its registers are the model's closed form. The moment anything that decides the tariff
changes (a calendar activates, at once or at its activation time; the special days or the
clock's zone or DST rules are written), the meter keeps its registers as they are then
(``MeterState.tariff_base``) and from that interval on adds each interval's import to the
register its schedule names for the interval's start, in the meter's local time:
``local = UTC - time_zone`` (the Blue Book's deviation: CET is -60), plus the DST deviation
while daylight saving is in force. A special day (matching the local date, every year or one
year) replaces the week's day profile; a day profile's action with a script selector the
meter has no register for (not 1 or 2) changes nothing. The meter switches by the true time
(its clock's drift is ignored, as the profile and events do).
"""

from __future__ import annotations

import calendar as calendars
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from meters import obis as obis_codes

from ...protocols.dlms import axdr
from .. import model
from . import supply

if TYPE_CHECKING:
    from .meter import MeterState, SimulatedMeter

NOT_SPECIFIED_TIME = bytes.fromhex("ffffffffffffffffff800000")
SCRIPT_TABLE = obis_codes.to_bytes("0.0.10.0.100.255")
TARIFFS = (1, 2)  # the registers 1.0.1.8.1 / 1.0.1.8.2 (script selectors 1 and 2)
_LAST, _SECOND_LAST = 0xFE, 0xFD


def default_calendar(attr: int) -> bytes:
    """The calendar a meter leaves the factory with (active 2-5 and passive 6-9 alike)."""
    if attr in (2, 6):
        return axdr.enc_octets(b"SIM-TOU1")
    if attr in (3, 7):
        start = bytes.fromhex("ffff0101ff000000ff800000")
        return axdr.enc_array(
            [
                axdr.enc_struct(
                    axdr.enc_octets(b"S1"), axdr.enc_octets(start), axdr.enc_octets(b"W1")
                )
            ]
        )
    if attr in (4, 8):
        return axdr.enc_array(
            [axdr.enc_struct(axdr.enc_octets(b"W1"), *(axdr.enc_uint8(1) for _ in range(7)))]
        )
    if attr in (5, 9):

        def action(hour: int, selector: int) -> bytes:
            return axdr.enc_struct(
                axdr.enc_octets(bytes((hour, 0, 0, 0))),
                axdr.enc_octets(SCRIPT_TABLE),
                axdr.enc_uint16(selector),
            )

        return axdr.enc_array(
            [
                axdr.enc_struct(
                    axdr.enc_uint8(1), axdr.enc_array([action(0, 2), action(7, 1), action(23, 2)])
                )
            ]
        )
    return axdr.enc_octets(NOT_SPECIFIED_TIME)  # 10: activation time


# ------------------------------------------------------------------ the schedule


def _rule_day(year: int, raw: bytes) -> datetime | None:
    """A DST begin/end pattern (12-byte date-time, year not specified) in year `year`, as a
    naive local standard time; None when the pattern names no month."""
    month, day, weekday, hour, minute = raw[2], raw[3], raw[4], raw[5], raw[6]
    if not 1 <= month <= 12:
        return None
    last = calendars.monthrange(year, month)[1]
    if day in (_LAST, _SECOND_LAST):
        d = date(year, month, last - (7 if day == _SECOND_LAST else 0))
        if 1 <= weekday <= 7:
            while d.isoweekday() != weekday:
                d -= timedelta(days=1)
    else:
        d = date(year, month, min(max(day, 1), last))
        if 1 <= weekday <= 7:  # the first such weekday on or after the day
            while d.isoweekday() != weekday:
                d += timedelta(days=1)
    return datetime.combine(d, time(hour % 24, minute % 60))


def _name(raw) -> str:
    return bytes(raw).decode("latin-1") if isinstance(raw, bytes | bytearray) else str(raw)


@dataclass
class Schedule:
    """A meter's tariff switching, decoded once from its state."""

    zone_minutes: int
    dst: tuple[bytes, bytes, int] | None  # begin, end patterns and the deviation (minutes)
    seasons: list[tuple[tuple[int, int], str]]  # ((month, day) of start, week name), sorted
    weeks: dict[str, tuple[int, ...]]
    days: dict[int, list[tuple[int, int]]]  # day id -> [(minute of day, tariff)], sorted
    special: dict[tuple[int, int], dict[int | None, int]]  # (month, day) -> {year: day id}
    _dst_years: dict = field(default_factory=dict)

    @classmethod
    def of(cls, state: MeterState) -> Schedule:
        def active(attr: int):
            return axdr.decode_all(state.calendar.get(attr) or default_calendar(attr))

        seasons = []
        for _label, start, week in active(3):
            start = bytes(start)
            month, day = (start[2], start[3]) if len(start) >= 4 else (1, 1)
            seasons.append(((month if month <= 12 else 1, day if day <= 31 else 1), _name(week)))
        weeks = {_name(w[0]): tuple(w[1:8]) for w in active(4)}
        days = {}
        for day_id, actions in active(5):
            switches = []
            for start, _script, selector in actions:
                start = bytes(start)
                if selector in TARIFFS:  # an unknown script changes nothing
                    switches.append(((start[0] % 24) * 60 + start[1] % 60, selector))
            days[day_id] = sorted(switches)
        special: dict[tuple[int, int], dict[int | None, int]] = {}
        for raw, day_id in state.special_days.values():
            year = int.from_bytes(raw[0:2], "big")
            special.setdefault((raw[2], raw[3]), {})[None if year == 0xFFFF else year] = day_id
        kept = state.clock_settings
        dst = None
        if kept.get(8):
            begin, end = kept.get(5), kept.get(6)
            if begin and end:
                dst = (bytes(begin), bytes(end), int(kept.get(7, 60)))
        return cls(
            zone_minutes=int(kept.get(3, 0)),
            dst=dst,
            seasons=sorted(seasons),
            weeks=weeks,
            days=days,
            special=special,
        )

    def local(self, utc: datetime) -> datetime:
        """The meter's local wall time (naive) at `utc`."""
        standard = utc.replace(tzinfo=None) - timedelta(minutes=self.zone_minutes)
        if self.dst is None:
            return standard
        begin, end, deviation = self._dst_of(standard.year)
        if begin is None or end is None:
            return standard
        summer = begin <= standard < end if begin < end else not end <= standard < begin
        return standard + timedelta(minutes=deviation) if summer else standard

    def _dst_of(self, year: int) -> tuple[datetime | None, datetime | None, int]:
        """DST begin and end of `year` in local standard time (the end is said in summer
        time), and the deviation; decoded once a year."""
        if year not in self._dst_years:
            begin_raw, end_raw, deviation = self.dst
            begin, end = _rule_day(year, begin_raw), _rule_day(year, end_raw)
            if end is not None:
                end -= timedelta(minutes=deviation)
            self._dst_years[year] = (begin, end, deviation)
        return self._dst_years[year]

    def day_profile(self, d: date) -> int | None:
        chosen = self.special.get((d.month, d.day), {})
        if d.year in chosen or None in chosen:
            return chosen.get(d.year, chosen.get(None))
        if not self.seasons:
            return None
        started = [s for s in self.seasons if s[0] <= (d.month, d.day)]
        _start, week = (started or self.seasons)[-1]
        days = self.weeks.get(week)
        return days[d.weekday()] if days and len(days) == 7 else None

    def tariff_at(self, utc: datetime) -> int | None:
        """The tariff in force at `utc` (None: the calendar names none)."""
        wall = self.local(utc)
        minute = wall.hour * 60 + wall.minute
        switches = self.days.get(self.day_profile(wall.date()), [])
        done = [t for m, t in switches if m <= minute]
        if done:
            return done[-1]
        before = self.days.get(self.day_profile(wall.date() - timedelta(days=1)), [])
        return before[-1][1] if before else None


# ------------------------------------------------------------------ the registers


def _cached(state: MeterState) -> Schedule:
    if state.tariff_schedule is None:
        state.tariff_schedule = Schedule.of(state)
    return state.tariff_schedule


def registers(meter: SimulatedMeter, state: MeterState, n: int) -> tuple[int, int]:
    """Tariff registers 1 and 2 after the first `n` intervals."""
    if state.tariff_base is None:
        return (
            supply.tariff_register(meter, state, 1, model.interval_end(n - 1)),
            supply.tariff_register(meter, state, 2, model.interval_end(n - 1)),
        )
    k0, base = state.tariff_base
    memo = state.tariff_memo
    k, totals = (memo[0], list(memo[1])) if memo and k0 <= memo[0] <= n else (k0, list(base))
    schedule = _cached(state)
    for i in range(k, n):
        tariff = schedule.tariff_at(model.EPOCH + timedelta(seconds=model.INTERVAL_S * i))
        if tariff in TARIFFS:
            totals[tariff - 1] += supply.interval_value(meter, state, 1, i)
    if n >= k0:
        state.tariff_memo = (n, tuple(totals))
    return totals[0], totals[1]


def tariff_register(meter: SimulatedMeter, state: MeterState, tariff: int, now: datetime) -> int:
    activate_when_due(meter, state, now)
    return registers(meter, state, model.completed_intervals(now))[tariff - 1]


def before_change(meter: SimulatedMeter, state: MeterState, at: datetime) -> None:
    """Something that decides the tariff is about to change at `at`: keep the registers as
    the old schedule made them up to the interval in progress; the new one counts from it."""
    k = model.completed_intervals(at)
    state.tariff_base = (k, registers(meter, state, k))
    state.tariff_memo = None
    state.tariff_schedule = None  # decoded again, from the changed state


# ------------------------------------------------------------------ calendar activation


def activate(meter: SimulatedMeter, state: MeterState, at: datetime) -> None:
    """The passive calendar becomes the active one (at `at`)."""
    before_change(meter, state, at)
    for active, passive in ((2, 6), (3, 7), (4, 8), (5, 9)):
        state.calendar[active] = state.calendar.get(passive) or default_calendar(passive)


def activate_when_due(meter: SimulatedMeter, state: MeterState, now: datetime) -> None:
    """The passive calendar takes over at its activation time (then the time is unset); the
    registers switch from that time on, however late it is noticed."""
    raw = state.calendar.get(10)
    if raw is None:
        return
    when = axdr.decode_datetime(raw[2:])  # the octet-string's 12 bytes
    if when is not None and when <= now:
        activate(meter, state, when)
        state.calendar[10] = axdr.enc_octets(NOT_SPECIFIED_TIME)
