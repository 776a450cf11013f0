"""Ready for reconnection (class 70 control modes) and what a meter records while its relay is
open, through the registry against the DLMS simulator over loopback."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from collection.protocols import base, registry
from collection.protocols.errors import NotSupported
from collection.simulators import model
from collection.simulators.dlms import supply
from collection.simulators.dlms_fleet import DlmsFleet, SimulatedMeter

from .conftest import NOW, run

pytestmark = pytest.mark.timeout(60)

SERIAL = "90000007"
IMPORT = "1-0:1.8.0*255"
POWER = "1-0:1.7.0*255"
VOLTAGE = "1-0:32.7.0*255"
PROFILE = "1-0:99.1.0*255"


class Clock:
    """The fleet's time, moved by the test."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def _settings(address):
    host, port, server = address
    endpoint = registry.Endpoint(
        protocol="dlms",
        url=f"tcp://{host}:{port}",
        security="low",
        password=b"12345678",
        timeout_s=2,
        retries=1,
        options={"server_address": server},
    )
    return registry.settings_for(endpoint)


def _on(fleet, commands):
    async def main():
        async with registry.open_session(_settings(fleet.address_of(SERIAL))) as session:
            return await commands(session)

    return main()


def test_ready_for_reconnection_arms_and_the_customer_reconnects():
    clock = Clock(NOW)

    async def main():
        async with DlmsFleet([SimulatedMeter(serial=SERIAL)], now=clock) as fleet:
            armed = await _on(fleet, lambda s: s.ready_for_reconnection())
            state = fleet.state_of(SERIAL)
            assert armed == base.RelayState(False, "ready_for_reconnection")
            assert state.control_mode == 2  # lowered to 1 for the one call, put back
            again = await _on(fleet, lambda s: s.ready_for_reconnection())  # nothing to do
            assert again == armed
            assert supply.press_button(state, clock.now)
            assert await _on(fleet, lambda s: s.relay_state()) == base.RelayState(True, "connected")
            # From disconnected it arms without a second disconnect.
            await _on(fleet, lambda s: s.disconnect())
            armed = await _on(fleet, lambda s: s.ready_for_reconnection())
            assert armed.control_state == "ready_for_reconnection"
            # A plain connect (mode 2) closes an armed relay at once.
            assert (await _on(fleet, lambda s: s.connect())).control_state == "connected"

    run(main())


def test_odd_control_mode_connect_only_arms_and_mode_zero_refuses():
    clock = Clock(NOW)

    async def main():
        async with DlmsFleet([SimulatedMeter(serial=SERIAL)], now=clock) as fleet:
            state = fleet.state_of(SERIAL)
            state.control_mode = 1
            await _on(fleet, lambda s: s.disconnect())
            connected = await _on(fleet, lambda s: s.connect())
            assert connected == base.RelayState(False, "ready_for_reconnection")
            assert state.control_mode == 1
            supply.press_button(state, clock.now)
            state.control_mode = 0
            with pytest.raises(NotSupported):
                await _on(fleet, lambda s: s.ready_for_reconnection())
            assert state.control_state == supply.CONNECTED

    run(main())


def _reads(session):
    async def read():
        values = await session.read_registers([IMPORT, POWER, VOLTAGE])
        return {v.obis: v.value for v in values}

    return read()


def test_an_open_relay_records_no_import_and_a_bypassed_one_does():
    clock = Clock(NOW)
    meters = [SimulatedMeter(serial=SERIAL), SimulatedMeter(serial="90000008", relay_bypassed=True)]

    async def main():
        async with DlmsFleet(meters, now=clock) as fleet:
            out = {}
            for serial in (SERIAL, "90000008"):
                settings = _settings(fleet.address_of(serial))
                async with registry.open_session(settings) as s:
                    before = await _reads(s)
                    await s.disconnect()
                clock.now = NOW + timedelta(hours=3)
                async with registry.open_session(settings) as s:
                    during = await _reads(s)
                    block = await s.read_load_profile(
                        PROFILE, NOW + timedelta(minutes=30), clock.now
                    )
                    rows = block.rows
                    await s.connect()
                clock.now = NOW + timedelta(hours=5)
                async with registry.open_session(settings) as s:
                    after = await _reads(s)
                clock.now = NOW
                out[serial] = before, during, rows, after
            return out

    out = run(main())
    before, during, rows, after = out[SERIAL]
    assert during[IMPORT] == before[IMPORT] > 0  # nothing recorded while open
    assert during[POWER] == 0 and during[VOLTAGE] > 200
    assert rows and all(v == 0 for row in rows for v in row.values)
    # Reconnected: the register advances again, by exactly the use after reconnection.
    k_on = model.completed_intervals(NOW + timedelta(hours=3))
    k_now = model.completed_intervals(NOW + timedelta(hours=5))
    used = model.cumulative(SERIAL, 1, k_now) - model.cumulative(SERIAL, 1, k_on)
    assert after[IMPORT] - during[IMPORT] == Decimal(used)
    # Bypassed: reads open, goes on recording.
    before, during, rows, _after = out["90000008"]
    assert during[IMPORT] > before[IMPORT]
    assert any(v > 0 for row in rows for v in row.values)
