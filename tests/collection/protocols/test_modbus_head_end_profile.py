"""The Modbus head-end profile (a meter without memory): each poll reads the energy registers
once and gives them as a capture at the nearest interval boundary (never after the asked
end); a poll further than the tolerance from it is clock-suspect, boundaries no poll reached
are rows without values. Against the simulator over loopback, with the poll's time set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from collection.protocols import registry
from collection.protocols.driver import Endpoint
from collection.protocols.modbus import session as modbus_session
from collection.protocols.modbus.session import STATUS_OFF_BOUNDARY, ModbusSession, boundary
from collection.protocols.modbus.settings import ModbusSettings
from collection.simulators import model
from collection.simulators.modbus.server import ModbusFleet, make_meters

PROFILE = "1-0:99.1.0*255"
B = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)  # a boundary
ENERGY_CHANNEL = {"1-0:1.8.0*255": 1, "1-0:2.8.0*255": 2, "1-0:3.8.0*255": 3}
ENERGY_CHANNEL["1-0:4.8.0*255"] = 4


def test_boundary_is_the_nearest_one_never_after_the_end():
    assert boundary(B + timedelta(seconds=20), 900) == B
    assert boundary(B - timedelta(seconds=20), 900) == B
    assert boundary(B + timedelta(minutes=8), 900) == B + timedelta(minutes=15)
    assert boundary(B + timedelta(minutes=8), 900, end=B) == B
    assert boundary(B + timedelta(minutes=40), 900, end=B) == B
    assert boundary(B + timedelta(seconds=29), 60) == B


def read(polled: datetime, start: datetime, end: datetime, **overrides):
    """One head-end poll at `polled` (the simulator's and the session's time)."""
    meters = make_meters(2, "pm5500")  # INT64 Wh registers: the model's integers exactly

    async def body():
        fleet = ModbusFleet(meters, clock=lambda: polled)
        await fleet.start()
        try:
            settings = ModbusSettings(fleet.url, 2, "pm5500", timeout=2.0, **overrides)
            async with ModbusSession(settings) as session:
                return await session.read_load_profile(PROFILE, start, end)
        finally:
            await fleet.close()

    saved = modbus_session._now
    modbus_session._now = lambda: polled
    try:
        return meters[1].serial, asyncio.run(asyncio.wait_for(body(), 30))
    finally:
        modbus_session._now = saved


def model_capture(serial: str, at: datetime) -> tuple:
    n = model.completed_intervals(at)
    return tuple(model.cumulative(serial, ENERGY_CHANNEL[o], n) for o in ENERGY_CHANNEL)


def test_a_poll_on_time_is_one_exact_capture_at_its_boundary():
    serial, block = read(B + timedelta(seconds=20), B - timedelta(minutes=15), B)
    assert [c.obis for c in block.channels] == list(ENERGY_CHANNEL)
    assert block.period_seconds == 900
    [row] = block.rows
    assert (row.timestamp, row.status) == (B, None)
    assert row.values == model_capture(serial, B)


def test_a_late_poll_is_clock_suspect_and_missed_boundaries_have_no_values():
    start = B - timedelta(hours=1)  # the last capture stored
    serial, block = read(B + timedelta(minutes=3), start, B)
    assert [r.timestamp for r in block.rows] == [
        start + timedelta(minutes=15 * k) for k in (1, 2, 3, 4)
    ]
    assert all(r.values == (None,) * 4 for r in block.rows[:3])
    last = block.rows[-1]
    assert last.status == STATUS_OFF_BOUNDARY and last.timestamp == B
    assert last.values == model_capture(serial, B)  # the model steps at boundaries only


def test_the_tolerance_and_the_backfill_are_settings():
    _serial, block = read(
        B + timedelta(minutes=3),
        B - timedelta(days=3),
        B,
        profile_tolerance_s=300,
        profile_backfill=8,
    )
    assert len(block.rows) == 9 and block.rows[-1].status is None


def test_a_poll_before_the_range_gives_nothing():
    _serial, block = read(B, B + timedelta(minutes=15), B + timedelta(hours=1))
    assert block.rows == ()


def test_endpoint_options_set_period_and_tolerance():
    endpoint = Endpoint(
        protocol="modbus",
        url="tcp://127.0.0.1:502",
        options={"unit_id": 3, "register_map": "sdm630", "profile_period": 300},
    )
    s = registry.settings_for(endpoint)
    assert (s.profile_period_s, s.profile_tolerance_s) == (300, 60.0)
    for bad in ({"profile_period": 7}, {"profile_tolerance": 500}):
        with pytest.raises(ValueError):
            registry.settings_for(
                Endpoint(
                    protocol="modbus",
                    url="tcp://127.0.0.1:502",
                    options={"unit_id": 3, "register_map": "sdm630", **bad},
                )
            )
