"""Modbus driver: register-map codec (pure), and the pymodbus session against our simulator
over loopback: every shipped map, TCP and RTU framing, merged requests, many unit ids on one
connection, faults as typed errors."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from collection.protocols import base, cli, registry
from collection.protocols.driver import Endpoint
from collection.protocols.errors import (
    AccessDenied,
    ConnectionFailed,
    FrameError,
    MalformedResponse,
    MeterTimeout,
    NotSupported,
    ProtocolError,
)
from collection.protocols.modbus import registermap as rm
from collection.protocols.modbus.session import ModbusSession
from collection.protocols.modbus.settings import ModbusSettings
from collection.simulators import model
from collection.simulators.modbus import values
from collection.simulators.modbus.server import Fault, ModbusFleet, answer_pdu, make_meters
from meters.obis import normalise

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
MAPS = ("sdm630", "pm5500", "em340")


def reg(kind, word_order="big", address=0, scale="1", resolution=None, function=3):
    return rm.Register(
        obis="1-0:1.8.0*255",
        function=function,
        address=address,
        type=kind,
        word_order=word_order,
        scale=Decimal(scale),
        resolution=Decimal(resolution) if resolution else None,
    )


# ----------------------------------------------------------------- codec (pure)


@pytest.mark.parametrize(
    ("kind", "word_order", "words", "value"),
    [
        ("uint16", "big", [0xFFFE], 65534),
        ("int16", "big", [0xFFFE], -2),
        ("uint32", "big", [0x0001, 0x0002], 65538),
        ("uint32", "little", [0x0002, 0x0001], 65538),
        ("int32", "big", [0xFFFF, 0xFFFE], -2),
        ("int32", "little", [0xFFFE, 0xFFFF], -2),
        ("int64", "big", [0x0000, 0x0001, 0x0000, 0x0002], (1 << 32) + 2),
        ("int64", "little", [0x0002, 0x0000, 0x0001, 0x0000], (1 << 32) + 2),
        ("uint64", "big", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], (1 << 64) - 1),
        ("float32", "big", [0x4366, 0x8000], Decimal("230.5")),
        ("float32", "little", [0x8000, 0x4366], Decimal("230.5")),
        ("float64", "big", [0x406C, 0xD000, 0x0000, 0x0000], Decimal("230.5")),
    ],
)
def test_decode_each_type_and_word_order(kind, word_order, words, value):
    r = reg(kind, word_order)
    assert rm.decode(r, words) == value
    assert rm.encode(r, value) == words


def test_scale_and_resolution():
    kwh = reg("float32", scale="1000", resolution="1")  # kWh float -> Wh
    assert rm.decode(kwh, rm.encode(kwh, 1234567)) == 1234567
    tenths = reg("int32", "little", scale="0.1")
    assert rm.decode(tenths, [2305, 0]) == Decimal("230.5")
    assert rm.decode(reg("float32"), [0x7FC0, 0x0000]) is None  # NaN: not available


def test_plan_merges_contiguous_registers_and_respects_the_pdu_limit():
    contiguous = [reg("float32", address=2 * i) for i in range(80)]  # 160 registers
    requests = rm.plan(contiguous, 125)
    assert [(q.address, q.count) for q in requests] == [(0, 124), (124, 36)]
    assert all(q.count <= 125 for q in requests)
    # A gap splits a request unless the map allows spanning it; functions never mix.
    gapped = [reg("uint16", address=0), reg("uint16", address=5), reg("uint16", 1, 6, function=4)]
    assert [(q.function, q.address, q.count) for q in rm.plan(gapped)] == [
        (3, 0, 1),
        (3, 5, 1),
        (4, 6, 1),
    ]
    assert [(q.address, q.count) for q in rm.plan(gapped[:2], max_gap=4)] == [(0, 6)]


@pytest.mark.parametrize("name", MAPS)
def test_shipped_maps_load_with_stored_obis_and_no_overlap(name):
    m = rm.load(name)
    assert m.name == name and len(m.registers) >= 15
    for r in m.registers:
        assert r.obis == normalise(r.obis)
    spans = sorted((r.function, r.address, r.end) for r in m.registers)
    for (f1, _a1, e1), (f2, a2, _e2) in zip(spans, spans[1:], strict=False):
        assert f1 != f2 or e1 <= a2
    assert {r.obis for r in m.of_role("energy")} >= {"1-0:1.8.0*255", "1-0:2.8.0*255"}


def test_map_lookup_by_alias_and_unknown_map_is_not_supported():
    assert rm.load("Eastron SDM630").name == "sdm630"
    assert rm.load("PM5560").name == "pm5500"
    with pytest.raises(NotSupported):
        rm.load("no-such-meter")


# ----------------------------------------------------------------- over loopback


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def with_fleet(meters, body, framing="tcp"):
    fleet = ModbusFleet(meters, framing=framing, clock=lambda: NOW)
    await fleet.start()
    try:
        return await body(fleet)
    finally:
        await fleet.close()


def settings(fleet, unit_id, name, **kw):
    return ModbusSettings(fleet.url, unit_id, name, timeout=kw.pop("timeout", 1.0), **kw)


@pytest.mark.parametrize("framing", ["tcp", "rtu"])
@pytest.mark.parametrize("name", MAPS)
def test_every_map_reads_exactly_what_the_simulator_holds(name, framing):
    meters = make_meters(2, name)

    async def body(fleet):
        session = ModbusSession(settings(fleet, 2, name))
        async with session:
            energy = [r.obis for r in session.register_map.of_role("energy")]
            registers = await session.read_registers([*energy, "1.0.1.8.1.255"])
            asked = meters[1].requests
            inst = await session.read_instantaneous()
        return registers, asked, inst

    registers, asked, inst = run(with_fleet(meters, body, framing))
    the_map = rm.load(name)
    by_obis = the_map.by_obis()
    serial = meters[1].serial
    *energy, unknown = registers
    assert unknown.value is None and unknown.error == "not in the register map"
    for value in energy:
        assert value.value == values.expected(serial, by_obis[value.obis], NOW)
        assert value.unit in ("Wh", "varh")
    # Merged: as many requests as the planner says, fewer than registers asked.
    assert asked == len(rm.plan(the_map.of_role("energy"), the_map.max_registers, the_map.max_gap))
    assert asked < len(energy)
    for got, obis in zip(inst.voltages, ("32", "52", "72"), strict=True):
        assert got == values.expected(serial, by_obis[f"1-0:{obis}.7.0*255"], NOW)
    assert inst.voltages[0] == Decimal(model.instantaneous(serial, "1.0.32.7.0.255", NOW)) / 10
    assert inst.frequency == values.expected(serial, by_obis["1-0:14.7.0*255"], NOW)
    assert inst.active_power == values.expected(serial, by_obis["1-0:1.7.0*255"], NOW)
    assert len(inst.currents) == 3 and all(c is not None for c in inst.currents)
    # Angles: read where the map has them, else derived from the power factor.
    truth = [model.instantaneous(serial, f"1.0.81.7.{e}.255", NOW) / 10 for e in (4, 15, 26)]
    tolerance = 0 if "1-0:81.7.4*255" in by_obis else 1.0  # PF*1000 carries ~0.5 degree
    for got, want in zip(inst.angles, truth, strict=True):
        assert abs(float(got) - want) <= tolerance + 1e-9


def test_integer_energy_registers_equal_the_model_exactly():
    meters = make_meters(1, "pm5500")

    async def body(fleet):
        async with ModbusSession(settings(fleet, 1, "pm5500")) as session:
            return await session.read_registers(["1-0:1.8.0*255", "1-0:3.8.0*255"])

    import_, reactive = run(with_fleet(meters, body))
    assert import_.value == model.energy_register(meters[0].serial, 1, NOW)
    assert reactive.value == model.energy_register(meters[0].serial, 3, NOW)


def test_many_unit_ids_share_one_connection_one_request_at_a_time():
    meters = make_meters(12, "sdm630")

    async def one(fleet, unit):
        async with ModbusSession(settings(fleet, unit, "sdm630")) as session:
            return await session.read_registers(["1-0:1.8.0*255"])

    async def body(fleet):
        got = await asyncio.gather(*(one(fleet, m.unit_id) for m in meters))
        return got, fleet.connections

    got, connections = run(with_fleet(meters, body))
    assert connections == 1
    the_reg = rm.load("sdm630").by_obis()["1-0:1.8.0*255"]
    for (value,), meter in zip(got, meters, strict=True):
        assert value.value == values.expected(meter.serial, the_reg, NOW)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("timeout", MeterTimeout),
        ("exception", ProtocolError),
        ("garbage", (MeterTimeout, FrameError)),
    ],
)
@pytest.mark.parametrize("framing", ["tcp", "rtu"])
def test_faults_are_typed_errors_and_the_line_recovers(fault, error, framing):
    meters = make_meters(2, "sdm630")
    meters[0].fault = Fault(fault)

    async def body(fleet):
        with pytest.raises(error) as caught:
            async with ModbusSession(settings(fleet, 1, "sdm630", timeout=0.5)) as session:
                await session.read_registers(["1-0:1.8.0*255"])
        # The healthy unit on the same line still reads after the fault.
        async with ModbusSession(settings(fleet, 2, "sdm630")) as session:
            healthy = await session.read_registers(["1-0:1.8.0*255"])
        return caught.value, healthy

    exc, healthy = run(with_fleet(meters, body, framing))
    assert isinstance(exc, ProtocolError)
    if fault == "exception":
        assert exc.retryable and "exception 4" in str(exc)
    assert healthy[0].value is not None


def test_unknown_unit_illegal_address_refused_connection_and_unsupported_services():
    meters = make_meters(1, "sdm630")

    async def body(fleet):
        with pytest.raises(MeterTimeout):  # gateway: exception 11, target did not answer
            async with ModbusSession(settings(fleet, 99, "sdm630")) as session:
                await session.read_registers(["1-0:1.8.0*255"])
        async with ModbusSession(settings(fleet, 1, "sdm630")) as session:
            with pytest.raises(AccessDenied) as denied:
                await session._line.read(4, 0x4000, 2, 1, 1.0)
            assert denied.value.code == 2
            with pytest.raises(NotSupported):
                await session.read_clock()
            with pytest.raises(NotSupported):
                await session.read_events("0-0:99.98.0*255", NOW, NOW)
            with pytest.raises(NotSupported):
                await session.disconnect()
            with pytest.raises(NotSupported):
                await session.set_clock()
        port = fleet.port
        await fleet.close()
        # The line's connection lingered after its last session; the peer is gone now.
        with pytest.raises(ConnectionFailed):
            async with ModbusSession(
                ModbusSettings(f"tcp://127.0.0.1:{port}", 1, "sdm630", timeout=1)
            ) as session:
                await session.read_registers(["1-0:1.8.0*255"])
        with pytest.raises(ConnectionFailed):  # and a line never opened fails at the open
            async with ModbusSession(
                ModbusSettings(f"tcp://127.0.0.1:{port}/", 1, "sdm630", timeout=1)
            ):
                pass

    run(with_fleet(meters, body))


# ----------------------------------------------------------------- registry and CLI


def test_registry_builds_modbus_settings_from_an_endpoint():
    driver = registry.driver("modbus")
    # The load profile is the head-end's (polled registers), not the meter's.
    assert driver.capabilities == {
        base.READ_REGISTERS,
        base.READ_INSTANTANEOUS,
        base.READ_LOAD_PROFILE,
    }
    endpoint = Endpoint(
        protocol="modbus",
        url="tcp://10.0.0.5:502",
        timeout_s=5,
        options={"unit_id": 7, "register_map": "SDM630"},
    )
    s = registry.settings_for(endpoint)
    assert (s.url, s.unit_id, s.register_map, s.timeout) == ("tcp://10.0.0.5:502", 7, "SDM630", 5)
    assert registry.driver_of(s) is driver
    with pytest.raises(ValueError):
        registry.settings_for(Endpoint(protocol="modbus", url="tcp://h:502"))
    with pytest.raises(ValueError):
        registry.settings_for(
            Endpoint(protocol="modbus", url="tcp://h:502", options={"unit_id": 1})
        )


def test_read_meter_cli_prints_json(capsys):
    meters = make_meters(3, "em340")

    async def body(fleet):
        args = [
            "--protocol", "modbus", "--url", fleet.url, "--unit-id", "3", "--model", "em340",
            "--what", "registers,instantaneous",
        ]  # fmt: skip
        # cli.main runs its own event loop: give it a thread.
        return await asyncio.to_thread(cli.main, args)

    assert run(with_fleet(meters, body)) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["obis"] for r in out["registers"]] == [
        r.obis for r in rm.load("em340").of_role("energy")
    ]
    assert len(out["instantaneous"]["voltages"]) == 3
    assert cli.main(["--protocol", "modbus", "--url", "tcp://127.0.0.1:1"]) == 2


def test_a_silent_unit_costs_its_neighbours_on_the_line_nothing_but_time():
    meters = make_meters(6, "sdm630")
    meters[2].fault = Fault("timeout")

    async def one(fleet, unit):
        try:
            async with ModbusSession(settings(fleet, unit, "sdm630", timeout=0.5)) as session:
                return (await session.read_registers(["1-0:1.8.0*255"]))[0].value
        except ProtocolError as exc:
            return exc

    async def body(fleet):
        return await asyncio.gather(*(one(fleet, m.unit_id) for m in meters))

    got = run(with_fleet(meters, body))
    assert isinstance(got[2], MeterTimeout)
    assert all(isinstance(v, Decimal) for i, v in enumerate(got) if i != 2)


def test_rtu_bus_on_a_pty_serves_several_units_exactly():
    meters = make_meters(3, "em340")

    async def body():
        fleet = ModbusFleet(meters, framing="rtu", clock=lambda: NOW)
        path = await fleet.start_pty()
        try:

            async def one(unit):
                settings = ModbusSettings(path, unit, "em340", timeout=1.0)
                async with ModbusSession(settings) as session:
                    return await session.read_registers(["1-0:1.8.0*255", "1-0:2.8.0*255"])

            return await asyncio.gather(*(one(m.unit_id) for m in meters))
        finally:
            await fleet.close()

    got = run(body())
    by_obis = rm.load("em340").by_obis()
    for registers, meter in zip(got, meters, strict=True):
        for value in registers:
            assert value.value == values.expected(meter.serial, by_obis[value.obis], NOW)


@given(
    kind=st.sampled_from(sorted(rm.TYPES)),
    word_order=st.sampled_from(["big", "little"]),
    words=st.lists(st.integers(-5, 0x10004), max_size=6),
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_decoding_any_words_gives_a_value_or_a_typed_error(kind, word_order, words):
    r = reg(kind, word_order, scale="0.1", resolution="0.01")
    try:
        value = rm.decode(r, words)
    except MalformedResponse:
        return
    assert value is None or isinstance(value, Decimal)


@given(
    kind=st.sampled_from(["int16", "uint16", "int32", "uint32", "int64", "uint64"]),
    word_order=st.sampled_from(["big", "little"]),
    raw=st.integers(0, 0x7FFF),
)
def test_integer_registers_round_trip(kind, word_order, raw):
    r = reg(kind, word_order, scale="100")
    assert rm.decode(r, rm.encode(r, raw * 100)) == raw * 100


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=260))
def test_the_simulators_request_parser_answers_any_pdu_with_a_reply_or_an_exception(pdu):
    """The simulator's side of the wire: any request PDU gets the data or a Modbus exception
    (1 illegal function, 2 illegal address, 3 illegal value), never a Python error."""
    meter = make_meters(1, "pm5500")[0]
    reply = answer_pdu(meter, pdu, NOW)
    if reply[0] & 0x80:
        assert reply[0] == pdu[0] | 0x80 and reply[1] in (1, 2, 3) and len(reply) == 2
    else:
        assert reply[0] == pdu[0] in (3, 4) and reply[1] == len(reply) - 2


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_on_the_wire_never_stops_the_simulator(junk):
    """Random bytes to the RTU and TCP listeners: the connection may drop, the next client is
    still served exactly."""
    meters = make_meters(1, "em340")

    async def body():
        out = []
        for framing in ("tcp", "rtu"):
            fleet = ModbusFleet(meters, framing=framing, clock=lambda: NOW)
            await fleet.start()
            try:
                _reader, writer = await asyncio.open_connection(fleet.host, fleet.port)
                writer.write(junk)
                await writer.drain()
                writer.close()
                settings = ModbusSettings(fleet.url, 1, "em340", timeout=2.0)
                async with ModbusSession(settings) as session:
                    out += await session.read_registers(["1-0:1.8.0*255"])
            finally:
                await fleet.close()
        return out

    expected = values.expected(meters[0].serial, rm.load("em340").by_obis()["1-0:1.8.0*255"], NOW)
    assert [r.value for r in run(body())] == [expected, expected]
