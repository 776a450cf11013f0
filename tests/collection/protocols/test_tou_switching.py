"""The simulated meter switches tariffs by what it was sent, over the real protocol: a special
day, daylight saving and a calendar activating at its time each change which tariff register
(1-0:1.8.1 / 1-0:1.8.2) the import accumulates in, interval by interval. The expected figures
come from the value model's intervals (`model.interval_value`), not from the simulator's own
tariff code."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from collection.protocols import base
from collection.simulators import model
from collection.simulators.dlms_fleet import DlmsFleet, SimulatedMeter

from .conftest import make_settings, run

pytestmark = pytest.mark.timeout(120)

SERIAL = "90000001"
SCRIPT = "0-0:10.0.100*255"
T1, T2, TOTAL = "1-0:1.8.1*255", "1-0:1.8.2*255", "1-0:1.8.0*255"


def _day(day_id, *switches):
    return base.DayProfile(
        day_id, tuple(base.DayAction(time(h, m), SCRIPT, tariff) for h, m, tariff in switches)
    )


def calendar(t1_from=7, special=()):
    """Every day: tariff 1 from `t1_from`:00 to 23:00, else 2; day 2 (holidays) all tariff 2."""
    return base.TouCalendar(
        name="TEST",
        seasons=(base.Season("ALL", datetime(2030, 1, 1, tzinfo=UTC), "WK"),),
        weeks=(base.WeekProfile("WK", (1,) * 7),),
        days=(_day(1, (0, 0, 2), (t1_from, 0, 1), (23, 0, 2)), _day(2, (0, 0, 2))),
        special_days=tuple(special),
    )


def _import(start: datetime, end: datetime) -> int:
    """The import energy of the intervals starting in [start, end) (the model's own sum)."""
    first, last = model.completed_intervals(start), model.completed_intervals(end)
    return sum(model.interval_value(SERIAL, 1, k) for k in range(first, last))


class Meter:
    """One simulated meter on a clock the test moves, talked to over loopback."""

    def __init__(self, fleet, clock):
        self.fleet, self.clock = fleet, clock
        meter = fleet.meter(SERIAL)
        self.settings = make_settings(
            meter, fleet.address_of(SERIAL), auth="low", password=meter.password
        )

    async def do(self, at: datetime, commands):
        from collection.protocols import registry

        self.clock[0] = at
        async with registry.open_session(self.settings) as session:
            return await commands(session)

    async def registers(self, at: datetime) -> tuple[int, int]:
        async def read(session):
            return await session.read_registers([T1, T2, TOTAL])

        t1, t2, total = (r.value for r in await self.do(at, read))
        assert t1 + t2 == total  # every interval in exactly one tariff
        return int(t1), int(t2)


def on_meter(test):
    clock = [datetime(2030, 1, 1, tzinfo=UTC)]

    async def main():
        async with DlmsFleet(
            [SimulatedMeter(serial=SERIAL)], interface="wrapper", now=lambda: clock[0]
        ) as fleet:
            await test(Meter(fleet, clock))

    run(main())


def test_a_special_day_sent_with_the_calendar_keeps_tariff_1_off_all_day():
    async def test(meter):
        start = datetime(2030, 12, 24, tzinfo=UTC)  # a Tuesday
        christmas = base.SpecialDay(index=0, month=12, day=25, day_id=2)
        await meter.do(start, lambda s: s.write_tou(calendar(special=[christmas])))
        t1, t2 = await meter.registers(start)
        assert (Decimal(t1), Decimal(t2)) == (
            model.tariff_register(SERIAL, 1, start),
            model.tariff_register(SERIAL, 2, start),
        )  # the registers are what they were: the new schedule counts from now on
        for day, holiday in ((25, True), (26, False)):
            morning = datetime(2030, 12, day, 7, tzinfo=UTC)
            noon = morning + timedelta(hours=5)
            before, after = await meter.registers(morning), await meter.registers(noon)
            used = _import(morning, noon)
            assert used > 0
            if holiday:  # the special day's profile: everything in tariff 2
                assert (after[0] - before[0], after[1] - before[1]) == (0, used)
            else:
                assert (after[0] - before[0], after[1] - before[1]) == (used, 0)

    on_meter(test)


def test_daylight_saving_moves_the_tariff_switch_by_its_deviation():
    async def test(meter):
        start = datetime(2031, 3, 1, tzinfo=UTC)
        settings = base.ClockSettings(
            time_zone_minutes=0,
            dst_enabled=True,
            dst_begin=base.DstRule(month=3, day=-1, weekday=7, hour=1),
            dst_end=base.DstRule(month=10, day=-1, weekday=7, hour=2),
            dst_deviation_minutes=60,
        )
        await meter.do(start, lambda s: s.write_clock_settings(settings))
        for day, summer in (
            (datetime(2031, 3, 10, tzinfo=UTC), False),
            (datetime(2031, 6, 10, tzinfo=UTC), True),
        ):
            early = day + timedelta(hours=6)  # UTC 06:00-07:00: local 07:00-08:00 in summer
            late = day + timedelta(hours=22)  # UTC 22:00-23:00: local 23:00-24:00 in summer
            a, b = await meter.registers(early), await meter.registers(early + timedelta(hours=1))
            c, d = await meter.registers(late), await meter.registers(late + timedelta(hours=1))
            first, last = (
                _import(early, early + timedelta(hours=1)),
                _import(late, late + timedelta(hours=1)),
            )
            tariff_of_early = 1 if summer else 2
            tariff_of_late = 2 if summer else 1
            assert b[tariff_of_early - 1] - a[tariff_of_early - 1] == first > 0
            assert b[2 - tariff_of_early] == a[2 - tariff_of_early]
            assert d[tariff_of_late - 1] - c[tariff_of_late - 1] == last > 0
            assert d[2 - tariff_of_late] == c[2 - tariff_of_late]

    on_meter(test)


def test_a_calendar_switches_at_its_activation_time_not_before():
    async def test(meter):
        written = datetime(2031, 5, 1, tzinfo=UTC)
        activation = datetime(2031, 5, 3, tzinfo=UTC)
        await meter.do(written, lambda s: s.write_tou(calendar(t1_from=6), activate_at=activation))
        for day, active in ((datetime(2031, 5, 2, tzinfo=UTC), False), (activation, True)):
            six = day + timedelta(hours=6)
            before, after = (
                await meter.registers(six),
                await meter.registers(six + timedelta(hours=1)),
            )
            used = _import(six, six + timedelta(hours=1))
            moved = (used, 0) if active else (0, used)  # 06:00-07:00: tariff 1 once active
            assert (after[0] - before[0], after[1] - before[1]) == moved

        state = await meter.do(activation, lambda s: s.read_tou())
        assert state.active.name == "TEST" and state.activate_at is None

    on_meter(test)
