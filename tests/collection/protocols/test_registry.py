"""The protocol registry: drivers by name, settings from an endpoint, sessions over loopback."""

from __future__ import annotations

import pytest

from collection.protocols import base, registry
from collection.protocols.dlms.commands import DlmsSession
from collection.protocols.dlms.settings import DlmsSettings
from collection.protocols.errors import NotSupported

from .conftest import NOW, fleet, run

pytestmark = pytest.mark.timeout(60)

SERIAL = "90000001"


def test_every_protocol_name_maps_to_its_driver():
    for name, driver in registry.DRIVERS.items():
        assert driver.protocol == name
        assert driver.capabilities <= base.KNOWN_CAPABILITIES
        assert registry.driver(name) is driver


def test_protocol_without_driver_is_typed_not_supported():
    with pytest.raises(NotSupported) as info:
        registry.driver("no-such-protocol")
    assert not info.value.retryable


def test_dlms_settings_from_endpoint():
    endpoint = registry.Endpoint(
        protocol="dlms",
        url="tcp://127.0.0.1:4059",
        security="high",
        auth_key=bytes(range(16)),
        block_key=bytes(range(16, 32)),
        system_title=b"SIM00001",
        client_system_title=b"HEADEND1",
        timeout_s=7,
        retries=4,
        options={"interface": "hdlc", "client_address": 1, "server_address": 3},
        counter_scope="meter:12",
        get_with_list=False,
    )
    settings = registry.settings_for(endpoint)
    assert isinstance(settings, DlmsSettings)
    assert (settings.interface, settings.client, settings.server_address) == ("hdlc", 1, 3)
    assert settings.system_title == b"HEADEND1" and settings.server_system_title == b"SIM00001"
    assert (settings.response_timeout, settings.hdlc_retries) == (7.0, 4)
    assert settings.invocation_counter_key == "meter:12:1"
    assert settings.get_with_list is False
    assert isinstance(registry.open_session(settings), DlmsSession)


def test_incomplete_endpoint_is_a_value_error():
    with pytest.raises(ValueError):
        registry.settings_for(registry.Endpoint(protocol="dlms", url="tcp://h:1", security="low"))


def test_session_opened_through_the_registry_reads_the_simulator():
    from collection.simulators.dlms_fleet import SimulatedMeter

    async def main():
        meter = SimulatedMeter(serial=SERIAL)
        async with fleet([meter]) as f:
            host, port, server = f.address_of(SERIAL)
            endpoint = registry.Endpoint(
                protocol="dlms",
                url=f"tcp://{host}:{port}",
                timeout_s=2,
                options={"server_address": server},
            )
            async with registry.open_session(registry.settings_for(endpoint)) as session:
                return await session.read_clock()

    assert run(main()).meter_time == NOW


def test_push_decoders_come_from_the_registry():
    with_push = registry.push_protocols()
    assert with_push == [name for name, d in registry.DRIVERS.items() if d.push is not None]
    assert registry.DEFAULT_PUSH_PROTOCOL in with_push
    assert registry.push_decoder() is registry.driver(registry.DEFAULT_PUSH_PROTOCOL).push
    for name in with_push:
        decoder = registry.push_decoder(name)
        assert decoder.protocol == name and decoder.interfaces


def test_protocol_without_push_is_typed_not_supported():
    without = [name for name, d in registry.DRIVERS.items() if d.push is None]
    assert without  # modbus and the IEC serial protocols have no meter-initiated messages
    for name in without + ["no-such-protocol"]:
        with pytest.raises(NotSupported):
            registry.push_decoder(name)
