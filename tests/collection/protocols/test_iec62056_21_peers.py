"""An independent IEC 62056-21 client (the ``iec62056-21`` package from PyPI, not written
here) reads our simulator: the readout's values equal the model, and programming mode with the
P1 password reads the clock. Its blocking sockets run beside the simulator's own thread."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from iec62056_21 import constants, messages
from iec62056_21.client import Iec6205621Client

from collection.simulators.iec62056_21 import values
from collection.simulators.iec62056_21.server import Iec21Fleet, make_meters
from tests.collection.fleet import fleet_thread

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
PASSWORD = "peer1234"
# The readout's units in the contract's (kept apart from our codec on purpose).
SCALE = {"kWh": (3, "Wh"), "kvarh": (3, "varh"), "kW": (3, "W")}


def _client(fleet, meter) -> Iec6205621Client:
    client = Iec6205621Client.with_tcp_transport(
        address=(fleet.host, fleet.port), device_address=meter.address, password=PASSWORD
    )
    client.transport.timeout = 5
    client.connect()
    return client


def test_the_pypi_client_reads_our_readout_exactly():
    meters = make_meters(3, password=PASSWORD)
    target = meters[2]
    with fleet_thread(meters, fleet_class=Iec21Fleet, clock=lambda: NOW) as fleet:
        client = _client(fleet, target)
        try:
            readout = client.standard_readout()
        finally:
            client.disconnect()
    got = {}
    for data_set in readout.data:
        if data_set.address is None:  # a second bracket (maximum demand's capture time)
            continue
        exponent, _unit = SCALE.get(data_set.unit, (0, data_set.unit))
        try:
            got[f"1-0:{data_set.address}*255"] = Decimal(data_set.value).scaleb(exponent)
        except ArithmeticError:
            continue  # serial, time, date, error register
    expected = values.expected(target.serial, NOW)
    assert {k: got[k] for k in expected} == expected
    # It always cuts a \W enhanced-identification pair after the baud character, so a
    # plain "/AMi5SIM21" reads as "IM21" there (our codec takes \W only when present).
    assert client.identification == "IM21" and client.switchover_baudrate == 9600


def test_the_pypi_client_reads_the_clock_in_programming_mode():
    meters = make_meters(1, password=PASSWORD)
    with fleet_thread(meters, fleet_class=Iec21Fleet, clock=lambda: NOW) as fleet:
        client = _client(fleet, meters[0])
        try:
            challenge = client.access_programming_mode()
            assert challenge.command == "P" and challenge.command_type == 0
            # Its own send_password builds a DataSet without an address (a TypeError in
            # 0.0.2): the same command by hand.
            p1 = messages.CommandMessage(
                command="P", command_type=1, data_set=messages.DataSet(address="", value=PASSWORD)
            )
            client.transport.send(p1.to_bytes())
            assert client._recv_ack() == constants.ACK
            time_value = client.read_single_value("0.9.1").value
            date_value = client.read_single_value("0.9.2").value
            client.send_break()
        finally:
            client.disconnect()
    assert (time_value, date_value) == ("120730", "250615")
