"""The command side of the session contract, through the registry, against the simulator.

Every capability is declared: a declared one works against the simulated meter over
loopback, an undeclared one raises the typed NotSupported (never an AttributeError or a
protocol error).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from collection.protocols import base, registry
from collection.protocols.errors import AccessDenied, NotSupported

from .conftest import NOW, fleet, run

pytestmark = pytest.mark.timeout(60)

SERIAL = "90000001"


def _sim_meter():
    from collection.simulators.dlms_fleet import SimulatedMeter

    return SimulatedMeter(serial=SERIAL)


def _settings(meter, address, security="low"):
    host, port, server = address
    endpoint = registry.Endpoint(
        protocol="dlms",
        url=f"tcp://{host}:{port}",
        security=security,
        password=meter.password if security == "low" else None,
        timeout_s=2,
        retries=1,
        options={"server_address": server},
    )
    return registry.settings_for(endpoint)


def _on_meter(commands, security="low"):
    """Run `commands(session)` on a simulated meter over loopback; return what it returns."""

    async def main():
        meter = _sim_meter()
        async with fleet([meter]) as f:
            settings = _settings(meter, f.address_of(SERIAL), security)
            async with registry.open_session(settings) as session:
                return await commands(session)

    return run(main())


# One call per capability, with arguments that are valid for the simulated meter.
CALLS = {
    base.SET_CLOCK: lambda s: s.set_clock(NOW + timedelta(minutes=5)),
    base.READ_RELAY: lambda s: s.relay_state(),
    base.CONNECT: lambda s: s.connect(),
    base.DISCONNECT: lambda s: s.disconnect(),
    base.READY_FOR_RECONNECTION: lambda s: s.ready_for_reconnection(),
    base.LIMITER: lambda s: s.read_limiter(),
    base.PUSH_SETUP: lambda s: s.read_push_setup(),
    base.CLOCK_SETTINGS: lambda s: s.read_clock_settings(),
    base.COMMUNICATION: lambda s: s.read_communication(),
    base.ALARM_FILTERS: lambda s: s.write_alarm_filters(base.AlarmFilters(0xFFFFFFFF, 0xFF)),
    base.CONFIGURE_LOAD_PROFILE: lambda s: s.configure_load_profile(900, ["1-0:1.29.0*255"]),
    base.WRITE_TOU: lambda s: s.write_tou(
        base.TouCalendar(
            name="T2",
            seasons=(base.Season("S1", NOW, "W1"),),
            weeks=(base.WeekProfile("W1", (1,) * 7),),
            days=(
                base.DayProfile(1, (base.DayAction(datetime.min.time(), "0-0:10.0.100*255", 1),)),
            ),
        )
    ),
}


def test_every_command_capability_has_a_call_here():
    assert set(CALLS) >= base.COMMAND_CAPABILITIES
    assert base.ALL_CAPABILITIES == base.READ_CAPABILITIES | base.COMMAND_CAPABILITIES


def test_dlms_session_does_what_it_declares_and_refuses_the_rest_typed():
    driver = registry.driver("dlms")

    async def main():
        meter = _sim_meter()
        async with fleet([meter]) as f:
            settings = _settings(meter, f.address_of(SERIAL))
            async with driver.open(settings) as session:
                assert session.capabilities == driver.capabilities
                for capability, call in CALLS.items():
                    if capability in driver.capabilities:
                        await call(session)
                    else:
                        with pytest.raises(NotSupported):
                            await call(session)

    run(main())
    # The simulator has every object; DLMS also reads a concentrator's meter list.
    assert driver.capabilities == base.ALL_CAPABILITIES | {base.READ_DEVICES}


def test_relay_commands_round_trip_and_are_read_back():
    async def commands(s):
        return await s.disconnect(), await s.relay_state(), await s.connect()

    off, state, on = _on_meter(commands)
    assert off == state == base.RelayState(False, "disconnected")
    assert on == base.RelayState(True, "connected")


def test_clock_set_is_read_back():
    target = NOW + timedelta(hours=1, seconds=3)

    assert _on_meter(lambda s: s.set_clock(target)).meter_time == target


def test_push_destination_is_set_and_read_back():
    async def commands(s):
        before = await s.read_push_setup()
        after = await s.set_push_destination("127.0.0.1:4063")
        return before, after, await s.read_push_setup("0-0:25.9.0*255")

    before, after, again = _on_meter(commands)
    assert before.setup == "0-0:25.9.0*255"
    assert before.objects == ("0-0:42.0.0*255", "0-0:97.98.0*255", "0-0:1.0.0*255")
    assert after.destination == again.destination == "127.0.0.1:4063"


def test_push_destination_is_checked_before_anything_is_sent():
    async def commands(s):
        with pytest.raises(ValueError):
            await s.set_push_destination("no-port")

    _on_meter(commands)


def test_public_client_may_not_command():
    async def commands(s):
        with pytest.raises(AccessDenied):
            await s.set_push_destination("127.0.0.1:4063")
        with pytest.raises(AccessDenied):
            await s.disconnect()

    _on_meter(commands, security="none")


def test_a_session_without_commands_refuses_each_typed():
    class ReadOnly(base.MeterSession):
        capabilities = frozenset({base.READ_CLOCK})

        async def open(self):
            pass

        async def close(self):
            pass

        async def read_clock(self):
            return base.ClockReading(NOW, datetime.now(UTC))

    async def main():
        async with ReadOnly() as s:
            for call in CALLS.values():
                with pytest.raises(NotSupported) as info:
                    await call(s)
                assert not info.value.retryable
            with pytest.raises(NotSupported):
                await s.write_limiter(base.Limiter(threshold=Decimal(5000)))
            with pytest.raises(NotSupported):
                await s.set_push_destination("127.0.0.1:4063")

    asyncio.run(main())
