"""The independent dlms-cosem client reads the simulator; values match model.py."""

from datetime import UTC, datetime, timedelta

import pytest
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.time import datetime_from_bytes

from collection.simulators import model

from .conftest import CLOCK, DATA, NOW, PROFILE, REGISTER, attr, cosem_client, get_value

DAY = datetime(2025, 3, 9, tzinfo=UTC)


def _dt(raw) -> datetime:
    value, _status = datetime_from_bytes(bytes(raw))
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # deviation 0 -> naive


def _range(start, end):
    return RangeDescriptor(
        restricting_object=CaptureObject(attr(CLOCK, "0.0.1.0.0.255", 2)),
        from_value=start,
        to_value=end,
    )


def _check_reads(client, meter):
    clock = _dt(get_value(client, CLOCK, "0.0.1.0.0.255", 2))
    assert clock == NOW.replace(microsecond=0)
    assert get_value(client, REGISTER, "1.0.1.8.0.255", 2) == model.energy_register(
        meter.serial, 1, NOW
    )
    assert get_value(client, REGISTER, "1.0.1.8.0.255", 3) == [0, 30]
    assert get_value(client, REGISTER, "1.0.32.7.0.255", 3) == [-1, 35]
    rows = get_value(client, PROFILE, "1.0.99.1.0.255", 2, _range(DAY, DAY + timedelta(hours=6)))
    expected = model.profile_entries(meter.serial, DAY, DAY + timedelta(hours=6))
    assert len(rows) == len(expected) == 25
    for row, exp in zip(rows, expected, strict=True):
        assert _dt(row[0]) == exp[0]
        assert row[1:] == list(exp[1:])


@pytest.mark.parametrize("level", ["none", "low", "high"])
def test_wrapper_security_levels(fleet, meters, level):
    meter = meters[2]
    client = cosem_client(fleet, meter, level)
    with client.session():
        _check_reads(client, meter)


@pytest.mark.parametrize("level", ["none", "high"])
def test_hdlc(hdlc_fleet, meters, level):
    meter = meters[1]
    client = cosem_client(hdlc_fleet, meter, level, hdlc=True)
    with client.session():
        _check_reads(client, meter)


def test_full_day_profile_uses_block_transfer_and_counter_object(fleet, meters):
    meter = meters[0]
    client = cosem_client(fleet, meter, "high", ic=5)
    with client.session():
        rows = get_value(client, PROFILE, "1.0.99.1.0.255", 2, _range(DAY, DAY + timedelta(days=1)))
        assert len(rows) == 97
    public = cosem_client(fleet, meter, "none")
    with public.session():
        last = get_value(public, DATA, "0.0.43.1.0.255", 2)
    assert last == client.client_invocation_counter - 1
    assert fleet.state_of(meter.serial).server_ic > 3


def test_many_meters_single_listener_hdlc_4_byte_address():
    from collection.simulators.dlms_fleet import DlmsFleet, make_meters

    meters = make_meters(200)
    fleet = DlmsFleet(meters, now=lambda: NOW, interface="hdlc")
    with fleet.running_in_thread():
        m = meters[180]
        assert fleet.address_of(m.serial).server_address == 181
        client = cosem_client(fleet, m, "none", hdlc=True)
        with client.session():
            assert get_value(client, REGISTER, "1.0.2.8.0.255", 2) == model.energy_register(
                m.serial, 2, NOW
            )


def test_per_meter_ports():
    from collection.simulators.dlms_fleet import DlmsFleet, make_meters

    meters = make_meters(3)
    fleet = DlmsFleet(meters, now=lambda: NOW, per_meter_ports=True)
    with fleet.running_in_thread():
        ports = {fleet.address_of(m.serial).port for m in meters}
        assert len(ports) == 3
        for m in meters:
            assert fleet.address_of(m.serial).server_address == 1
            client = cosem_client(fleet, m, "none")
            with client.session():
                assert get_value(client, REGISTER, "1.0.1.8.0.255", 2) == (
                    model.energy_register(m.serial, 1, NOW)
                )


def test_cumulative_profile_style_captures_the_registers():
    """An IDIS-style simulated meter, read by dlms-cosem: its profile holds the registers
    1.8.0 and 2.8.0 at each period end (capture objects say so), equal to the model's
    running totals -- what a real cumulative profile looks like to an outside client."""
    from collection.simulators.dlms_fleet import DlmsFleet, make_meters

    (meter,) = make_meters(1, profile_style="cumulative")
    fleet = DlmsFleet([meter], now=lambda: NOW)
    with fleet.running_in_thread():
        client = cosem_client(fleet, meter, "none")
        with client.session():
            captured = get_value(client, PROFILE, "1.0.99.1.0.255", 3)
            rows = get_value(
                client, PROFILE, "1.0.99.1.0.255", 2, _range(DAY, DAY + timedelta(hours=2))
            )
    assert [bytes(c[1]).hex() for c in captured] == [
        "0000010000ff",
        "0100010800ff",
        "0100020800ff",
    ]
    assert len(rows) == 9
    for row in rows:
        end = _dt(row[0])
        n = model.completed_intervals(end)
        assert row[1:] == [
            model.cumulative(meter.serial, 1, n),
            model.cumulative(meter.serial, 2, n),
        ]
