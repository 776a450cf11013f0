"""IEC 62056-21 meters on local time (the ``-local`` clock plug-ins): their readout clock,
maximum-demand time, clock set, load profile and event log are wall times of the utility's
zone, turned into UTC with its summer-time rules -- checked against the simulator keeping
Madrid time across both EU changes of 2026, every value against the shared value model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collection.protocols import base
from collection.protocols.errors import MalformedResponse
from collection.protocols.iec62056_21 import clock, profile
from collection.protocols.iec62056_21.session import Iec21Session
from collection.protocols.iec62056_21.settings import Iec21Settings
from collection.simulators import model
from collection.simulators.iec62056_21 import values
from collection.simulators.iec62056_21.server import Iec21Fleet, make_meters

MADRID = ZoneInfo("Europe/Madrid")
PASSWORD = "s3cret42"
LOAD_PROFILE = "1-0:99.1.0*255"
EVENT_LOG = "0-0:99.98.0*255"
# 2026: summer time from 29 March 01:00 UTC, back to standard on 25 October 01:00 UTC.
AUTUMN = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
SPRING = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_wall_times_to_utc_across_both_changes():
    repeated = datetime(2026, 10, 25, 2, 30)  # 02:30 twice in Madrid that night
    assert clock.to_utc(repeated, MADRID, summer=True) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert clock.to_utc(repeated, MADRID, summer=False) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    near = datetime(2026, 10, 25, 1, 29, tzinfo=UTC)  # the head-end's clock tells them apart
    assert clock.to_utc(repeated, MADRID, near=near) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    with pytest.raises(MalformedResponse):  # 02:30 never happened on 29 March
        clock.to_utc(datetime(2026, 3, 29, 2, 30), MADRID)
    assert clock.to_utc(datetime(2026, 7, 1, 12, 0), None) == datetime(2026, 7, 1, 12, tzinfo=UTC)


@given(st.integers(min_value=-96 * 3, max_value=96 * 3), st.sampled_from([AUTUMN, SPRING]))
def test_a_local_stamp_with_its_season_digit_is_one_instant(quarter, change):
    at = change + timedelta(minutes=15 * quarter)
    for seconds in (False, True):
        text = profile.stamp(at, seconds=seconds, zone=MADRID)
        assert text[0] == ("1" if at.astimezone(MADRID).dst() else "0")
        assert profile.parse_stamp(text, MADRID) == at
    assert profile.parse_stamp(profile.stamp(at), MADRID) == at  # season 2: UTC anyway


def _settings(fleet, meter) -> Iec21Settings:
    return Iec21Settings(
        url=fleet.url,
        address=meter.address,
        password=PASSWORD,
        timeout=1.0,
        clock="separated-local",
        time_zone="Europe/Madrid",
    )


def _read(now, body):
    meters = make_meters(1, password=PASSWORD)
    meters[0].time_zone = "Europe/Madrid"

    async def main():
        fleet = Iec21Fleet(meters, clock=lambda: now)
        await fleet.start()
        try:
            async with Iec21Session(_settings(fleet, meters[0])) as session:
                return await body(session), meters[0]
        finally:
            await fleet.close()

    return asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize(
    "now", [datetime(2026, 7, 1, 10, 7, 30, tzinfo=UTC), AUTUMN + timedelta(hours=3, minutes=7)]
)
def test_the_readout_clock_and_maximum_demand_time_are_utc(now):
    async def body(session):
        return await session.read_clock(), await session.read_registers(["1-0:1.6.0*255"])

    (reading, (demand,)), _meter = _read(now, body)
    assert reading.meter_time == now.replace(microsecond=0)
    assert demand.capture_time == model.max_demand(_meter.serial, now)[1]
    assert demand.value == Decimal(model.max_demand(_meter.serial, now)[0])


def test_the_clock_is_set_in_local_time():
    now = datetime(2026, 7, 1, 10, 7, 30, tzinfo=UTC)
    target = now + timedelta(minutes=3, seconds=4)

    async def body(session):
        return await session.set_clock(target)

    reading, meter = _read(now, body)
    assert reading.meter_time == target  # read back as UTC: the W1 values were Madrid time
    assert meter.clock_offset_s == 184


@pytest.mark.parametrize("change", [AUTUMN, SPRING])
def test_the_profile_and_log_across_a_summer_time_change_are_contiguous_in_utc(change):
    start, end = change - timedelta(hours=3), change + timedelta(hours=3)
    serial = make_meters(1)[0].serial
    log_start = change - timedelta(days=20)

    async def body(session):
        block = await session.read_load_profile(LOAD_PROFILE, start, end)
        events = await session.read_events(EVENT_LOG, log_start, end)
        return block, events

    (block, events), _meter = _read(end + timedelta(minutes=7), body)
    got = {r.timestamp: r.values for r in block.rows}
    expected = {
        at: tuple(Decimal(v) for v in chans)
        for at, chans in values.expected_profile(serial, start, end).items()
    }
    assert got == expected and len(got) == 25  # every quarter-hour, none twice, none missing
    assert events == [
        base.MeterEvent(at, code, EVENT_LOG) for at, code in model.events(serial, log_start, end)
    ]
