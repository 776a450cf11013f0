"""IEC 62056-21 mode C: the codec (pure, round trips and fuzz), and the session against our
simulator over loopback: every register of the readout equals the model, the clock by readout
and by R1 in programming mode, W1 clock set, the P1 password, faults as typed errors."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import operator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from collection.protocols import base, cli, registry
from collection.protocols.driver import Endpoint
from collection.protocols.errors import (
    AccessDenied,
    AuthenticationFailed,
    FrameError,
    MalformedResponse,
    MeterTimeout,
    NotAssociated,
    NotSupported,
)
from collection.protocols.iec62056_21 import clock, codec
from collection.protocols.iec62056_21.obis import address_of, obis_of
from collection.protocols.iec62056_21.session import Iec21Session
from collection.protocols.iec62056_21.settings import Iec21Settings
from collection.simulators.iec62056_21 import values
from collection.simulators.iec62056_21.server import Fault, Iec21Fleet, make_meters

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
PASSWORD = "s3cret42"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def with_fleet(meters, body, **kwargs):
    fleet = Iec21Fleet(meters, clock=kwargs.pop("clock", lambda: NOW), **kwargs)
    await fleet.start()
    try:
        return await body(fleet)
    finally:
        await fleet.close()


def settings(fleet, meter, **overrides) -> Iec21Settings:
    kwargs = dict(url=fleet.url, address=meter.address, timeout=1.0)
    kwargs.update(overrides)
    return Iec21Settings(**kwargs)


# ----------------------------------------------------------------- codec (pure)


def test_messages_are_the_standard_bytes():
    assert codec.sign_on("12345678") == b"/?12345678!\r\n"
    assert codec.sign_on() == b"/?!\r\n"
    assert codec.option_select("5", "0") == b"\x06050\r\n"
    assert codec.option_select("5", "1") == b"\x06051\r\n"
    p1 = codec.password("abc")
    assert p1[:-1] == b"\x01P1\x02(abc)\x03"
    assert p1[-1] == functools.reduce(operator.xor, b"P1\x02(abc)\x03")
    assert codec.BREAK[:-1] == b"\x01B0\x03"
    assert codec.read("0.9.1")[:-1] == b"\x01R1\x020.9.1()\x03"
    assert codec.write("0.9.2", "250615")[:-1] == b"\x01W1\x020.9.2(250615)\x03"
    with pytest.raises(ValueError):
        codec.sign_on("bad!addr")


def test_identification_baud_reaction_time_and_mode_e():
    ident = codec.parse_identification(b"/LGZ5ZMD3104407.B35\r\n")
    assert (ident.manufacturer, ident.baud_rate, ident.ident) == ("LGZ", 9600, "ZMD3104407.B35")
    assert not ident.reaction_20ms and not ident.mode_e
    ident = codec.parse_identification(b"/ISk5\\2MT174-1003\r\n")
    assert ident.reaction_20ms and ident.mode_e and ident.ident == "MT174-1003"
    with pytest.raises(MalformedResponse):
        codec.parse_identification(b"/?12!\r\n")


def test_block_round_trip_and_bcc_checked():
    frame = codec.block(b"1.8.0(001234.567*kWh)\r\n!\r\n")
    parsed = codec.parse_block(frame)
    assert parsed.body == b"1.8.0(001234.567*kWh)\r\n!\r\n" and not parsed.partial
    with pytest.raises(codec.BccError) as caught:
        codec.parse_block(frame[:-1] + bytes([frame[-1] ^ 1]))
    assert caught.value.retryable
    partial = codec.parse_block(codec.block(b"1.8.0(1*kWh)", end=codec.EOT))
    assert partial.partial


def test_data_sets_round_trip_with_units_and_several_brackets():
    body = b"".join(
        [
            codec.data_set("1.8.0", "001234.567", "kWh") + codec.CRLF,
            b"1.6.0(02.500*kW)(2506011215)\r\n",
            codec.data_set("C.1.0", "21000001") + codec.CRLF,
            b"F.F(00000000)\r\n!\r\n",
        ]
    )
    sets = codec.parse_data(body)
    assert [(s.address, s.value, s.unit) for s in sets] == [
        ("1.8.0", "001234.567", "kWh"),
        ("1.6.0", "02.500", "kW"),
        ("C.1.0", "21000001", None),
        ("F.F", "00000000", None),
    ]
    assert sets[1].values[1] == ("2506011215", None)
    assert codec.to_contract("001234.567", "kWh") == (Decimal(1234567), "Wh")
    assert codec.to_contract("230.1", "V") == (Decimal("230.1"), "V")
    assert codec.to_contract("x", "kWh") == (None, "kWh")
    assert clock.timestamp("2506011215") == datetime(2025, 6, 1, 12, 15, tzinfo=UTC)


def test_addresses_map_to_stored_obis():
    assert obis_of("1.8.0") == "1-0:1.8.0*255"
    assert obis_of("1-0:1.8.0*255") == "1-0:1.8.0*255"
    assert obis_of("C.1.0") == "0-0:96.1.0*255"
    assert obis_of("F.F") is None
    assert address_of("1-0:32.7.0*255") == "32.7.0"
    assert address_of("0-0:96.1.0*255") == "C.1.0"


def test_the_reader_cuts_a_stream_fed_byte_by_byte():
    stream = b"/AMI5SIM\r\n" + codec.ACK + codec.block(b"1.8.0(1*kWh)") + codec.NAK
    reader = codec.Reader()
    out = []
    for byte in stream:
        reader.feed(bytes([byte]))
        while (message := reader.next()) is not None:
            out.append(message)
    assert out == [b"/AMI5SIM\r\n", codec.ACK, codec.block(b"1.8.0(1*kWh)"), codec.NAK]


def test_clock_parses_both_plug_ins():
    expected = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
    for dialect in clock.DIALECTS.values():
        text_t = expected.strftime(dialect.time_format)
        text_d = expected.strftime(dialect.date_format)
        assert clock.parse(text_t, text_d) == expected
    with pytest.raises(MalformedResponse):
        clock.parse("25:00:00", "250615")


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_parsers_raise_only_typed_errors(data):
    for parse in (codec.parse_block, codec.parse_identification, codec.parse_data):
        try:
            parse(data)
        except FrameError:
            pass
    reader = codec.Reader()
    try:
        reader.feed(data)
        while reader.next() is not None:
            pass
    except FrameError:
        pass


_VALUE = st.text(alphabet="0123456789.:-ABCDEF", max_size=12)
_UNIT = st.one_of(st.none(), st.sampled_from(["kWh", "kvarh", "kW", "V", "A", "Hz"]))
_ADDR = st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_ADDR, _VALUE, _UNIT), min_size=1, max_size=10))
def test_readout_blocks_round_trip(rows):
    body = b"".join(codec.data_set(*row) + codec.CRLF for row in rows) + b"!\r\n"
    parsed = codec.parse_data(codec.parse_block(codec.block(body)).body)
    assert [(s.address, s.value, s.unit) for s in parsed] == rows


# ----------------------------------------------------------------- session vs simulator


def test_readout_equals_the_model_for_every_register():
    meters = make_meters(3)
    expected = values.expected(meters[1].serial, NOW)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[1])) as meter:
            regs = await meter.read_registers(list(expected))
            inst = await meter.read_instantaneous()
            serial = await meter.read_registers(["C.1.0"])
        return regs, inst, serial

    regs, inst, serial = run(with_fleet(meters, body))
    assert {r.obis: r.value for r in regs} == expected
    assert all(r.error is None for r in regs)
    units = {r.obis: r.unit for r in regs}
    assert units["1-0:1.8.0*255"] == "Wh" and units["1-0:3.8.0*255"] == "varh"
    assert units["1-0:1.6.0*255"] == "W" and units["1-0:32.7.0*255"] == "V"
    md = next(r for r in regs if r.obis == "1-0:1.6.0*255")
    assert md.capture_time is not None and md.capture_time <= NOW
    assert inst.voltages == tuple(expected[f"1-0:{c}.7.0*255"] for c in (32, 52, 72))
    assert inst.active_power == expected["1-0:1.7.0*255"]
    assert serial[0].raw == meters[1].serial


def test_clock_by_readout_and_by_r1_and_set_by_w1():
    meters = make_meters(1, password=PASSWORD)
    meters[0].clock_offset_s = -125  # the meter is slow

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0])) as meter:
            by_readout = await meter.read_clock()
        async with Iec21Session(settings(fleet, meters[0], password=PASSWORD)) as meter:
            by_r1 = await meter.read_clock()
            after = await meter.set_clock(NOW + timedelta(hours=1))
            again = await meter.read_clock()
        return by_readout, by_r1, after, again

    by_readout, by_r1, after, again = run(with_fleet(meters, body))
    assert by_readout.meter_time == by_r1.meter_time == NOW - timedelta(seconds=125)
    assert after.meter_time == again.meter_time == NOW + timedelta(hours=1)
    assert meters[0].clock_offset_s == 3600


def test_a_wrong_password_is_authentication_failed_and_the_session_goes_on():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], password="wrong")) as meter:
            with pytest.raises(AuthenticationFailed):
                await meter.read_clock()
            with pytest.raises(AuthenticationFailed):
                await meter.set_clock(NOW)
            # The readout needs no password: the same session still reads.
            return await meter.read_registers(["1.8.0"])

    regs = run(with_fleet(meters, body))
    assert regs[0].value == values.expected(meters[0].serial, NOW)["1-0:1.8.0*255"]


def test_setting_the_clock_without_a_password_is_refused_before_any_byte():
    meters = make_meters(1)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0])) as meter:
            # A job's clock sync skips it (the reader checks the capability) ...
            assert base.SET_CLOCK not in meter.capabilities
            # ... and a direct call is refused.
            with pytest.raises(AccessDenied):
                await meter.set_clock(NOW)
            with pytest.raises(NotSupported):
                await meter.read_load_profile("1-0:99.1.0*255", NOW, NOW)

    run(with_fleet(meters, body))
    assert meters[0].sign_ons == 0


@pytest.mark.parametrize(
    ("kind", "error"),
    [("timeout", MeterTimeout), ("garbage", MalformedResponse), ("bcc", codec.BccError)],
)
def test_faults_are_typed_errors_and_a_neighbour_still_reads(kind, error):
    meters = make_meters(2)
    meters[0].fault = Fault(kind)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], timeout=0.5)) as meter:
            with pytest.raises(error) as caught:
                await meter.read_registers(["1.8.0"])
        async with Iec21Session(settings(fleet, meters[1])) as meter:
            regs = await meter.read_registers(["1.8.0"])
        return caught.value, regs

    raised, regs = run(with_fleet(meters, body))
    assert raised.retryable
    assert regs[0].value == values.expected(meters[1].serial, NOW)["1-0:1.8.0*255"]


def test_an_optical_head_echo_is_skipped():
    meters = make_meters(1, password=PASSWORD)
    meters[0].echo = True

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], password=PASSWORD)) as meter:
            return await meter.read_registers(["2.8.0"]), await meter.read_clock()

    regs, reading = run(with_fleet(meters, body))
    assert regs[0].value == values.expected(meters[0].serial, NOW)["1-0:2.8.0*255"]
    assert reading.meter_time == NOW


def test_unknown_address_times_out_and_a_closed_session_says_so():
    meters = make_meters(1)

    async def body(fleet):
        meter = Iec21Session(Iec21Settings(url=fleet.url, address="99", timeout=0.3))
        async with meter:
            with pytest.raises(MeterTimeout):
                await meter.read_registers(["1.8.0"])
        with pytest.raises(NotAssociated):
            await meter.read_registers(["1.8.0"])

    run(with_fleet(meters, body))


def test_the_password_never_shows_in_a_repr_or_the_exchange_log():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        s = settings(fleet, meters[0], password=PASSWORD, exchange_log=True)
        async with Iec21Session(s) as meter:
            await meter.read_clock()
        return s, meter.exchange_log

    s, log = run(with_fleet(meters, body))
    assert PASSWORD not in repr(s)
    assert log and not any(PASSWORD.encode() in e.data for e in log)
    assert any(e.data.startswith(b"\x01P1") for e in log)


def test_registry_settings_from_an_endpoint():
    endpoint = Endpoint(
        protocol="iec62056_21",
        url="tcp://127.0.0.1:4059",
        password=PASSWORD,
        timeout_s=7,
        options={"address": "21000001"},
    )
    s = registry.settings_for(endpoint)
    assert isinstance(s, Iec21Settings)
    assert (s.address, s.password, s.timeout, s.clock) == ("21000001", PASSWORD, 7.0, "standard")
    assert s.profile == "generic"
    drv = registry.driver("iec62056_21")
    assert drv.supports(base.READ_REGISTERS) and drv.supports(base.SET_CLOCK)
    assert drv.supports(base.READ_LOAD_PROFILE) and drv.supports(base.READ_EVENTS)
    assert not drv.supports(base.READ_RELAY)
    with pytest.raises(ValueError):
        registry.settings_for(Endpoint(protocol="iec62056_21", url="tcp://x", options={}))
    with pytest.raises(ValueError):  # an unknown profile plug-in
        registry.settings_for(
            Endpoint(protocol="iec62056_21", url="tcp://h:1", options={"profile": "nope"})
        )


def test_read_meter_cli_prints_json(capsys):
    meters = make_meters(2, password=PASSWORD)

    async def body(fleet):
        args = [
            "--protocol", "iec62056-21", "--url", fleet.url, "--device-address",
            meters[1].address, "--password", PASSWORD, "--what", "clock,registers",
        ]  # fmt: skip
        return await asyncio.to_thread(cli.main, args)

    assert run(with_fleet(meters, body, clock=None)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["clock"]["meter_time"].endswith("Z")
    assert {r["obis"] for r in out["registers"]} >= {"1-0:1.8.0*255", "1-0:1.6.0*255"}
    assert all(r["error"] is None for r in out["registers"])
    wrong = ["--protocol", "iec62056-21", "--url", "tcp://127.0.0.1:1", "--what", "registers"]
    assert cli.main(wrong) == 2


def test_enhanced_identification_sequences_are_taken_off_the_ident():
    ident = codec.parse_identification(b"/ABC6\\W\\2XYZ\r\n")
    assert ident.ident == "XYZ" and ident.mode_e and ident.baud_rate == 19200


def test_a_serial_line_signs_on_at_300_baud_and_switches_in_place():
    meters = make_meters(2, password=PASSWORD)
    meters[1].echo = True  # an optical head on the line

    async def body(fleet):
        path = await fleet.start_pty()
        s = Iec21Settings(url=path, address=meters[1].address, password=PASSWORD, timeout=2)
        assert s.baudrate == 300 and s.serial_framing == "7E1"
        # A Linux pty refuses a rate change under 7E1 (EINVAL): the line here is 8N1.
        s = dataclasses.replace(s, serial_framing="8N1")
        async with Iec21Session(s) as meter:
            regs = await meter.read_registers(["1.8.0", "3.8.0"])
            reading = await meter.read_clock()
            rate = meter._transport.baudrate
        return regs, reading, rate

    regs, reading, rate = run(with_fleet(meters, body))
    expected = values.expected(meters[1].serial, NOW)
    assert [r.value for r in regs] == [expected["1-0:1.8.0*255"], expected["1-0:3.8.0*255"]]
    assert reading.meter_time == NOW
    assert rate == 9600  # the identification's "5", switched on the open port


@pytest.mark.parametrize("echo", [False, True])
def test_a_readout_in_partial_blocks_is_acknowledged_and_joined(echo):
    meters = make_meters(1)
    meters[0].block_size = 64  # a dozen EOT blocks, each acknowledged
    meters[0].echo = echo

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], exchange_log=True)) as meter:
            regs = await meter.read_registers(list(values.expected(meters[0].serial, NOW)))
        return regs, meter.exchange_log

    regs, log = run(with_fleet(meters, body))
    assert {r.obis: r.value for r in regs} == values.expected(meters[0].serial, NOW)
    assert sum(e.data == codec.ACK for e in log if e.direction == "tx") >= 5


@pytest.mark.parametrize(("block_size", "echo"), [(None, False), (None, True), (80, False)])
def test_a_wrong_bcc_is_answered_with_nak_and_the_repeat_is_taken(block_size, echo):
    meters = make_meters(1)
    meters[0].fault = Fault("bcc-once")
    meters[0].block_size = block_size
    meters[0].echo = echo

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], exchange_log=True)) as meter:
            regs = await meter.read_registers(["1.8.0", "4.8.0"])
        return regs, meter.exchange_log

    regs, log = run(with_fleet(meters, body))
    expected = values.expected(meters[0].serial, NOW)
    assert [r.value for r in regs] == [expected["1-0:1.8.0*255"], expected["1-0:4.8.0*255"]]
    assert any(e.direction == "tx" and e.data == codec.NAK for e in log)


def test_a_persistent_wrong_bcc_gives_up_after_the_repeats():
    meters = make_meters(1)
    meters[0].fault = Fault("bcc")

    async def body(fleet):
        s = settings(fleet, meters[0], exchange_log=True, bcc_repeats=3)
        async with Iec21Session(s) as meter:
            with pytest.raises(codec.BccError):
                await meter.read_registers(["1.8.0"])
        return meter.exchange_log

    log = run(with_fleet(meters, body))
    assert sum(e.direction == "tx" and e.data == codec.NAK for e in log) == 3


def test_requests_wait_for_the_meters_reaction_time():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], exchange_log=True)) as meter:
            await meter.read_registers(["1.8.0"])
            fast = meter.exchange_log
            assert meter.identification.reaction_20ms  # "/AMi5...": 20 ms
        s = settings(fleet, meters[0], password=PASSWORD, exchange_log=True, reaction_s=0.1)
        async with Iec21Session(s) as meter:
            await meter.read_clock()
            slow = meter.exchange_log
        return fast, slow

    def gaps(log):
        return [
            (b.at - a.at).total_seconds()
            for a, b in zip(log, log[1:], strict=False)
            if a.direction == "rx" and b.direction == "tx"
        ]

    fast, slow = run(with_fleet(meters, body))
    assert gaps(fast) and min(gaps(fast)) >= 0.015
    assert gaps(slow) and min(gaps(slow)) >= 0.09
