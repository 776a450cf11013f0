"""The limiter (class 71) and the configuration objects, through the DLMS driver, against the
simulator over loopback: every write is read back, bad values are refused by the meter and
change nothing, and the simulated meter does what it was told (a limiter trips and opens the
relay, reconnects by itself, locks out; a calendar activates at its time).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from collection.protocols import base, registry
from collection.protocols.errors import ProtocolError
from collection.simulators import model
from collection.simulators.dlms_fleet import DlmsFleet, SimulatedMeter

from .conftest import NOW, run

pytestmark = pytest.mark.timeout(60)

SERIAL = "90000001"
POWER = "1.0.1.7.0.255"


class Clock:
    """The simulator's true time, moved by the test."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def _settings(address, meter):
    host, port, server = address
    endpoint = registry.Endpoint(
        protocol="dlms",
        url=f"tcp://{host}:{port}",
        security="low",
        password=meter.password,
        timeout_s=2,
        retries=1,
        options={"server_address": server},
    )
    return registry.settings_for(endpoint)


def _with_meter(script, clock=None):
    """Run `script(open_session, fleet, clock)`; open_session() gives a fresh session."""
    clock = clock or Clock(NOW)

    async def main():
        meter = SimulatedMeter(serial=SERIAL)
        async with DlmsFleet([meter], interface="wrapper", now=clock) as fleet:

            def open_session():
                return registry.open_session(_settings(fleet.address_of(SERIAL), meter))

            return await script(open_session, fleet, clock)

    return run(main())


def test_limiter_is_written_and_read_back_whole():
    activation = NOW + timedelta(hours=1)
    wanted = base.Limiter(
        threshold=Decimal(5000),
        emergency_threshold=Decimal(2000),
        min_over_seconds=120,
        min_under_seconds=300,
        emergency_profile=base.EmergencyProfile(7, activation, 3600),
        emergency_groups=(7, 9),
        reconnect_count=2,
        lockout_seconds=1800,
    )

    async def script(open_session, fleet, clock):
        async with open_session() as s:
            before = await s.read_limiter()
            after = await s.write_limiter(wanted)
        clock.t = activation + timedelta(minutes=1)
        async with open_session() as s:
            during = await s.read_limiter()
        return before, after, during

    before, after, during = _with_meter(script)
    assert before.threshold == 0 and before.monitored == "1-0:1.7.0*255"
    assert before.reconnect_count == 0 and before.lockout_seconds == 0
    assert after.threshold == Decimal(5000) and after.emergency_threshold == Decimal(2000)
    assert (after.min_over_seconds, after.min_under_seconds) == (120, 300)
    assert after.emergency_profile == base.EmergencyProfile(7, activation, 3600)
    assert after.emergency_groups == (7, 9)
    assert (after.reconnect_count, after.lockout_seconds) == (2, 1800)
    assert after.emergency_active is False and after.active_threshold == Decimal(5000)
    assert during.emergency_active is True and during.active_threshold == Decimal(2000)


def test_a_limiter_trips_reconnects_by_itself_then_locks_out():
    """Threshold under the customer's load: trip after the over-threshold time, back after the
    under-threshold time, once (reconnect count 1); the second trip locks out for 30 min."""
    start = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)  # the load is constant until 12:15

    async def script(open_session, fleet, clock):
        async with open_session() as s:
            await s.write_limiter(
                base.Limiter(
                    threshold=Decimal(model.instantaneous(SERIAL, POWER, start) - 1),
                    min_over_seconds=120,
                    min_under_seconds=300,
                    reconnect_count=1,
                    lockout_seconds=1800,
                )
            )
            states = {0: (await s.relay_state()).control_state}
        for minutes in (1, 3, 7, 9, 12, 20, 40):
            clock.t = start + timedelta(minutes=minutes)
            async with open_session() as s:
                states[minutes] = (await s.relay_state()).control_state
        return states, fleet.state_of(SERIAL).limiter.log

    states, log = _with_meter(script, Clock(start))
    assert states == {
        0: "connected",
        1: "connected",  # over the threshold for 1 of the 2 minutes
        3: "disconnected",  # tripped at +2
        7: "connected",  # under (nothing flows) for 5 minutes: back at +7
        9: "connected",  # over again since +8
        12: "disconnected",  # second trip at +10: locked out for 30 minutes
        20: "disconnected",
        40: "connected",  # lockout over at +40
    }
    minute = timedelta(minutes=1)
    assert [(t - start, kind) for t, kind in log] == [
        (2 * minute, "trip"),
        (7 * minute, "reconnect"),
        (10 * minute, "lockout"),
        (40 * minute, "reconnect"),
    ]


def test_a_limiter_above_the_load_never_trips_and_a_remote_reconnect_ends_a_lockout():
    async def script(open_session, fleet, clock):
        load = model.instantaneous(SERIAL, POWER, NOW)
        async with open_session() as s:
            await s.write_limiter(base.Limiter(threshold=Decimal(load + 100_000)))
        clock.t = NOW + timedelta(hours=2)
        async with open_session() as s:
            high = (await s.relay_state()).control_state
            await s.write_limiter(
                base.Limiter(threshold=Decimal(0), reconnect_count=0, lockout_seconds=0)
            )
        clock.t += timedelta(minutes=5)
        async with open_session() as s:
            locked = (await s.relay_state()).control_state
        clock.t += timedelta(days=1)
        async with open_session() as s:
            still = (await s.relay_state()).control_state
            await s.write_limiter(base.Limiter(threshold=Decimal(load + 100_000)))
            back = (await s.connect()).control_state
        clock.t += timedelta(minutes=10)
        async with open_session() as s:
            stays = (await s.relay_state()).control_state
        return high, locked, still, back, stays

    assert _with_meter(script) == (
        "connected",
        "disconnected",
        "disconnected",  # lockout 0: until a remote reconnect
        "connected",
        "connected",
    )


def test_limiter_refuses_a_threshold_finer_than_the_scaler_before_sending():
    async def script(open_session, fleet, clock):
        async with open_session() as s:
            with pytest.raises(ValueError):
                await s.write_limiter(base.Limiter(threshold=Decimal("10.5")))
            return await s.read_limiter()

    assert _with_meter(script).threshold == 0


def _calendar(name: str, special=()) -> base.TouCalendar:
    script = "0-0:10.0.100*255"
    return base.TouCalendar(
        name=name,
        seasons=(
            base.Season("SUMMER", datetime(2024, 4, 1, tzinfo=UTC), "WK1"),
            base.Season("WINTER", datetime(2024, 10, 1, tzinfo=UTC), "WK2"),
        ),
        weeks=(
            base.WeekProfile("WK1", (1, 1, 1, 1, 1, 2, 2)),
            base.WeekProfile("WK2", (1, 1, 1, 1, 1, 1, 2)),
        ),
        days=(
            base.DayProfile(
                1,
                (base.DayAction(time(0), script, 2), base.DayAction(time(7, 30), script, 1)),
            ),
            base.DayProfile(2, (base.DayAction(time(0), script, 2),)),
        ),
        special_days=special,
    )


def test_calendar_and_special_days_wait_for_their_activation_time():
    special = (
        base.SpecialDay(0, 12, 25, 2),
        base.SpecialDay(1, 1, 1, 2),
        base.SpecialDay(2, 4, 18, 2, year=2025),
    )
    wanted = _calendar("TOU-2025", special)
    activation = NOW + timedelta(days=2)

    async def script(open_session, fleet, clock):
        async with open_session() as s:
            await s.write_tou(wanted, activate_at=activation)
            waiting = await s.read_tou()
        clock.t = activation + timedelta(seconds=1)
        async with open_session() as s:
            done = await s.read_tou()
        return waiting, done

    waiting, done = _with_meter(script)
    assert waiting.active.name == "SIM-TOU1"
    assert waiting.passive == base.TouCalendar(
        "TOU-2025", wanted.seasons, wanted.weeks, wanted.days
    )
    assert waiting.activate_at == activation
    assert waiting.special_days == special
    assert done.active == waiting.passive
    assert done.activate_at is None


def test_calendar_without_a_date_is_active_at_once():
    async def script(open_session, fleet, clock):
        async with open_session() as s:
            await s.write_tou(_calendar("NOW"))
            return await s.read_tou()

    state = _with_meter(script)
    assert state.active.name == state.passive.name == "NOW"
    assert state.special_days == ()


def test_clock_settings_round_trip_and_a_bad_zone_changes_nothing():
    wanted = base.ClockSettings(
        time_zone_minutes=-60,
        dst_enabled=True,
        dst_begin=base.DstRule(3, -1, 7, 2),
        dst_end=base.DstRule(10, -1, 7, 3),
        dst_deviation_minutes=60,
    )

    async def script(open_session, fleet, clock):
        async with open_session() as s:
            before = await s.read_clock_settings()
            after = await s.write_clock_settings(wanted)
        async with open_session() as s:
            with pytest.raises(ProtocolError):
                await s.write_clock_settings(
                    base.ClockSettings(time_zone_minutes=5000, dst_enabled=False)
                )
        async with open_session() as s:
            return before, after, await s.read_clock_settings()

    before, after, again = _with_meter(script)
    assert before == base.ClockSettings(0, False, None, None, 60)
    assert after == again == wanted


def test_profile_configuration_is_read_back_and_changes_what_the_profile_holds():
    channels = ["1-0:1.29.0*255", "1-0:1.8.0*255"]

    async def script(open_session, fleet, clock):
        async with open_session() as s:
            before = await s.read_profile_config()
            await s.configure_load_profile(3600, channels)
            after = await s.read_profile_config()
            block = await s.read_load_profile("1-0:99.1.0*255", NOW - timedelta(hours=3), NOW)
        return before, after, block

    before, after, block = _with_meter(script)
    assert before.period_seconds == 900 and len(before.channels) == 4
    assert after == base.ProfileConfig("1-0:99.1.0*255", 3600, tuple(channels))
    assert block.period_seconds == 3600
    assert [c.obis for c in block.channels] == channels
    stamps = [row.timestamp for row in block.rows]
    assert stamps and all(
        b - a == timedelta(hours=1) for a, b in zip(stamps, stamps[1:], strict=False)
    )


def test_a_tripped_limiter_stops_the_recorded_import():
    """Threshold 0 with no automatic reconnection: the relay opens at the first minute and the
    profile records 0 from the interval in progress on, while the register stands still."""
    start = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    done = model.completed_intervals(start)

    async def script(open_session, fleet, clock):
        async with open_session() as s:
            await s.write_limiter(base.Limiter(threshold=Decimal(0), lockout_seconds=0))
        clock.t = start + timedelta(hours=2)
        async with open_session() as s:
            block = await s.read_load_profile("1-0:99.1.0*255", start - timedelta(hours=1), clock.t)
            register = (await s.read_registers(["1-0:1.8.0*255"]))[0].value
            relay = (await s.relay_state()).control_state
        return block, register, relay

    block, register, relay = _with_meter(script, Clock(start))
    assert relay == "disconnected"
    imports = {row.timestamp: row.values[0] for row in block.rows}
    before = [v for t, v in imports.items() if t <= start]
    after = [v for t, v in imports.items() if t > start]
    assert len(before) >= 4 and all(v > 0 for v in before)
    assert len(after) == 8 and all(v == 0 for v in after)
    assert register == model.cumulative(SERIAL, 1, done)
