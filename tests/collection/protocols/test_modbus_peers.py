"""Independent peers: pyModbusTCP's client reads our Modbus simulator, and our driver
(pymodbus's client) reads pyModbusTCP's server loaded with the value model's registers."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import pytest
from pyModbusTCP.client import ModbusClient
from pyModbusTCP.server import DataBank, ModbusServer

from collection.protocols.modbus import registermap as rm
from collection.protocols.modbus.session import ModbusSession
from collection.protocols.modbus.settings import ModbusSettings
from collection.simulators.modbus import values
from collection.simulators.modbus.server import ModbusFleet, make_meters
from tests.collection.fleet import fleet_thread

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize("name", ["sdm630", "pm5500", "em340"])
def test_pymodbustcp_client_reads_our_simulator(name):
    meters = make_meters(3, name)
    the_map = rm.load(name)
    with fleet_thread(meters, fleet_class=ModbusFleet, clock=lambda: NOW) as fleet:
        client = ModbusClient(host=fleet.host, port=fleet.port, unit_id=3, timeout=2.0)
        try:
            for reg in the_map.registers:
                read = (
                    client.read_input_registers
                    if reg.function == 4
                    else client.read_holding_registers
                )
                words = read(reg.address, reg.count)
                assert words == values.words(meters[2].serial, reg, NOW), reg.obis
                assert rm.decode(reg, words) == values.expected(meters[2].serial, reg, NOW)
        finally:
            client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["sdm630", "pm5500"])
def test_our_driver_reads_a_pymodbustcp_server(name):
    the_map = rm.load(name)
    serial = "70000042"
    bank = DataBank(coils_size=8, d_inputs_size=8, h_regs_size=0x10000, i_regs_size=0x10000)
    for reg in the_map.registers:
        put = bank.set_input_registers if reg.function == 4 else bank.set_holding_registers
        assert put(reg.address, values.words(serial, reg, NOW))
    port = free_port()
    server = ModbusServer(host="127.0.0.1", port=port, no_block=True, data_bank=bank)
    server.start()
    try:

        async def read():
            settings = ModbusSettings(f"tcp://127.0.0.1:{port}", 1, name, timeout=2.0)
            async with ModbusSession(settings) as session:
                registers = await session.read_registers(
                    [r.obis for r in the_map.of_role("energy")]
                )
                return registers, await session.read_instantaneous()

        registers, inst = asyncio.run(read())
    finally:
        server.stop()
    by_obis = the_map.by_obis()
    for value in registers:
        assert value.value == values.expected(serial, by_obis[value.obis], NOW)
    assert inst.voltages[1] == values.expected(serial, by_obis["1-0:52.7.0*255"], NOW)
