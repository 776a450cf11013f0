"""IEC 62056-21 beyond the readout: the load profile (``P.01``) and the event log (``P.98``)
read with R5 in programming mode through the generic profile plug-in, in one or several
partial blocks and with a wrong BCC repeated; modes A and B (the meter's identification says
which); the plug-in's parsers under Hypothesis. Every value is checked against the shared
value model, not against the simulator's text."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from collection.protocols import base, cli
from collection.protocols.errors import (
    AccessDenied,
    AuthenticationFailed,
    FrameError,
    NotSupported,
)
from collection.protocols.iec62056_21 import codec, profile
from collection.protocols.iec62056_21.obis import profile_address
from collection.protocols.iec62056_21.session import Iec21Session, NoProgrammingMode
from collection.protocols.iec62056_21.settings import Iec21Settings
from collection.simulators import model
from collection.simulators.iec62056_21 import values
from collection.simulators.iec62056_21.server import Fault, Iec21Fleet, make_meters

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
PASSWORD = "s3cret42"
LOAD_PROFILE = "1-0:99.1.0*255"
EVENT_LOG = "0-0:99.98.0*255"
CHANNEL_OBIS = ["1-0:1.29.0*255", "1-0:2.29.0*255", "1-0:3.29.0*255", "1-0:4.29.0*255"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def with_fleet(meters, body, now=NOW):
    fleet = Iec21Fleet(meters, clock=lambda: now)
    await fleet.start()
    try:
        return await body(fleet)
    finally:
        await fleet.close()


def settings(fleet, meter, **overrides) -> Iec21Settings:
    kwargs = dict(url=fleet.url, address=meter.address, password=PASSWORD, timeout=1.0)
    kwargs.update(overrides)
    return Iec21Settings(**kwargs)


def model_rows(serial, start, end):
    return {
        at: tuple(Decimal(v) for v in chans)
        for at, chans in values.expected_profile(serial, start, end).items()
    }


# ----------------------------------------------------------------- plug-in (pure)


def test_profile_addresses():
    assert profile_address(LOAD_PROFILE) == "P.01"
    assert profile_address("1.0.99.2.0.255") == "P.02"
    assert profile_address(EVENT_LOG) == "P.98"
    assert profile_address("P.1") == "P.01"
    assert profile_address("1-0:1.8.0*255") is None
    assert profile_address("nonsense") is None


def test_the_generic_layout_is_the_bytes_the_plug_in_documents():
    at = datetime(2025, 6, 15, 0, 15, tzinfo=UTC)
    rows = [
        (at, 0, ("0.123", "0.000")),
        (at + timedelta(minutes=15), 0, ("0.130", "0.001")),
        # a gap of one interval and a status change: a new header each
        (at + timedelta(minutes=45), 0x20, ("0.140", "0.002")),
    ]
    body = profile.format_profile("P.01", 900, (("1.29.0", "kWh"), ("2.29.0", "kWh")), rows)
    assert body == (
        b"P.01(22506150015)(00)(15)(2)(1.29.0)(kWh)(2.29.0)(kWh)\r\n"
        b"(0.123)(0.000)\r\n(0.130)(0.001)\r\n"
        b"P.01(22506150100)(20)(15)(2)(1.29.0)(kWh)(2.29.0)(kWh)\r\n(0.140)(0.002)\r\n"
    )
    data = profile.parse_profile(codec.parse_data(body), "P.01")
    assert data.period_s == 900 and data.rows == tuple(rows)
    assert profile.request("P.01", at, at + timedelta(hours=1), profile.DIALECTS["generic"]) == (
        codec.command("R5", b"P.01(22506150015;22506150115)")
    )
    log = profile.format_log("P.98", [profile.LogEntry(at, 0x28)])
    assert log == b"P.98(2250615001500)(0028)()(0)\r\n"
    assert profile.parse_log(codec.parse_data(log), "P.98") == [profile.LogEntry(at, 0x28)]
    assert profile.parse_profile(codec.parse_data(b"P.01()\r\n"), "P.01").rows == ()


@pytest.mark.parametrize(
    "body",
    [
        b"(0.1)(0.2)\r\n",  # values before a header
        b"P.01(22506150015)(00)(15)(2)(1.29.0)(kWh)(2.29.0)(kWh)\r\n(0.1)\r\n",  # 1 of 2
        b"P.01(22506150015)(XY)(15)(1)(1.29.0)(kWh)\r\n(0.1)\r\n",  # status not hex
        b"P.01(22506150015)(100)(15)(1)(1.29.0)(kWh)\r\n",  # status not a byte
        b"P.01(22513150015)(00)(15)(1)(1.29.0)(kWh)\r\n",  # month 13
        b"P.01(22506150015)(00)(0)(1)(1.29.0)(kWh)\r\n",  # period 0
        b"P.01(22506150015)(00)(15)(3)(1.29.0)(kWh)\r\n",  # 3 channels announced, 1 given
        b"P.01(22506150015)(00)(15)(1)(1.29.0)(kWh)\r\n"
        b"P.01(22506150100)(00)(30)(1)(1.29.0)(kWh)\r\n",  # the period changes
        b"1.8.0(1*kWh)\r\n",  # not a profile
    ],
)
def test_a_malformed_profile_is_a_typed_error(body):
    with pytest.raises(FrameError):
        profile.parse_profile(codec.parse_data(body), "P.01")


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_profile_and_log_parsers_raise_only_typed_errors(data):
    for parse in (profile.parse_profile, profile.parse_log):
        try:
            parse(codec.parse_data(data), "P.01" if parse is profile.parse_profile else "P.98")
        except FrameError:
            pass
    for text in (data.decode("latin-1"), data.hex()[:13]):
        try:
            profile.parse_range(text)
        except FrameError:
            pass


_BRACKET = st.text(alphabet="0123456789.;()ABCDEFPkWh*", max_size=14)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["P.01", "P.98", ""]), st.lists(_BRACKET, max_size=9))))
def test_fuzz_well_bracketed_answers_raise_only_typed_errors(lines):
    body = b"\r\n".join(
        (a + "".join(f"({v})" for v in vals)).encode() for a, vals in lines if a or vals
    )
    for parse, address in ((profile.parse_profile, "P.01"), (profile.parse_log, "P.98")):
        try:
            parse(codec.parse_data(body), address)
        except FrameError:
            pass


# ----------------------------------------------------------------- session vs simulator


@pytest.mark.parametrize(("block_size", "echo"), [(None, False), (200, False), (97, True)])
def test_the_load_profile_equals_the_model(block_size, echo):
    meters = make_meters(1, password=PASSWORD)
    meters[0].block_size = block_size  # the answer in partial (EOT) blocks, each acknowledged
    meters[0].echo = echo
    start, end = NOW - timedelta(days=1), NOW

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], exchange_log=True)) as meter:
            return await meter.read_load_profile(LOAD_PROFILE, start, end), meter.exchange_log

    block, log = run(with_fleet(meters, body))
    assert block.profile == LOAD_PROFILE and block.period_seconds == 900
    assert [c.obis for c in block.channels] == CHANNEL_OBIS
    assert [c.unit for c in block.channels] == ["Wh", "Wh", "varh", "varh"]
    got = {r.timestamp: r.values for r in block.rows}
    assert got == model_rows(meters[0].serial, start, end)
    assert len(got) == 96  # 12:00 yesterday .. 12:00 today, both ends
    if block_size:
        assert sum(e.direction == "tx" and e.data == codec.ACK for e in log) >= 10


def test_profile_status_splits_the_answer_and_reaches_the_rows():
    meters = make_meters(1, password=PASSWORD)
    adjusted = datetime(2025, 6, 15, 3, 0, tzinfo=UTC)
    meters[0].profile_status = {adjusted: 0x20, adjusted + timedelta(minutes=15): 0x80}
    start, end = datetime(2025, 6, 15, 2, 0, tzinfo=UTC), datetime(2025, 6, 15, 4, 0, tzinfo=UTC)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0])) as meter:
            return await meter.read_load_profile(LOAD_PROFILE, start, end)

    block = run(with_fleet(meters, body))
    status = {r.timestamp: r.status for r in block.rows}
    assert status[adjusted] == 0x20 and status[adjusted + timedelta(minutes=15)] == 0x80
    assert sum(1 for s in status.values() if s) == 2
    assert {r.timestamp: r.values for r in block.rows} == model_rows(meters[0].serial, start, end)


def test_a_wrong_bcc_in_the_profile_answer_is_repeated():
    meters = make_meters(1, password=PASSWORD)
    meters[0].fault = Fault("bcc-once")
    meters[0].block_size = 300
    start, end = NOW - timedelta(hours=6), NOW

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], exchange_log=True)) as meter:
            return await meter.read_load_profile(LOAD_PROFILE, start, end), meter.exchange_log

    block, log = run(with_fleet(meters, body))
    assert {r.timestamp: r.values for r in block.rows} == model_rows(meters[0].serial, start, end)
    assert any(e.direction == "tx" and e.data == codec.NAK for e in log)


def test_a_persistent_wrong_bcc_is_a_typed_bcc_error():
    meters = make_meters(1, password=PASSWORD)
    meters[0].fault = Fault("bcc")

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], bcc_repeats=1)) as meter:
            with pytest.raises(codec.BccError):
                await meter.read_load_profile(LOAD_PROFILE, NOW - timedelta(hours=1), NOW)

    run(with_fleet(meters, body))


def test_the_event_log_equals_the_model():
    meters = make_meters(3, password=PASSWORD)
    start, end = NOW - timedelta(days=20), NOW

    async def body(fleet):
        out = {}
        for m in meters:
            async with Iec21Session(settings(fleet, m)) as meter:
                out[m.serial] = await meter.read_events(EVENT_LOG, start, end)
        return out

    got = run(with_fleet(meters, body))
    total = 0
    for m in meters:
        expected = [
            base.MeterEvent(at, code, EVENT_LOG) for at, code in model.events(m.serial, start, end)
        ]
        assert got[m.serial] == expected
        total += len(expected)
    assert total > 5  # the model has an incident on about a quarter of the days


def test_nothing_in_the_range_is_no_rows_and_an_unknown_profile_is_refused():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0])) as meter:
            past = datetime(2023, 1, 1, tzinfo=UTC)  # before the model's epoch
            empty = await meter.read_load_profile(LOAD_PROFILE, past, past + timedelta(days=1))
            none = await meter.read_events(EVENT_LOG, past, past + timedelta(days=1))
            with pytest.raises(AccessDenied):  # the meter NAKs a profile it does not have
                await meter.read_load_profile("1-0:99.2.0*255", NOW - timedelta(hours=1), NOW)
            with pytest.raises(NotSupported):  # not a profile at all: refused before any byte
                await meter.read_load_profile("1-0:1.8.0*255", NOW - timedelta(hours=1), NOW)
            with pytest.raises(NotSupported):
                await meter.read_events(LOAD_PROFILE, NOW - timedelta(hours=1), NOW)
            # The session goes on after a refusal.
            rows = await meter.read_load_profile(LOAD_PROFILE, NOW - timedelta(hours=1), NOW)
        return empty, none, rows

    empty, none, rows = run(with_fleet(meters, body))
    assert empty.rows == () and none == []
    assert len(rows.rows) == 4


def test_without_a_password_there_is_no_profile_and_no_byte_is_sent():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], password=None)) as meter:
            assert not {base.READ_LOAD_PROFILE, base.READ_EVENTS} & meter.capabilities
            with pytest.raises(NotSupported):
                await meter.read_load_profile(LOAD_PROFILE, NOW - timedelta(hours=1), NOW)
            with pytest.raises(NotSupported):
                await meter.read_events(EVENT_LOG, NOW - timedelta(hours=1), NOW)
        return meters[0].sign_ons

    assert run(with_fleet(meters, body)) == 0


def test_a_wrong_password_refuses_the_profile():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], password="wrong")) as meter:
            with pytest.raises(AuthenticationFailed):
                await meter.read_load_profile(LOAD_PROFILE, NOW - timedelta(hours=1), NOW)

    run(with_fleet(meters, body))


# ----------------------------------------------------------------- modes A and B


@pytest.mark.parametrize("mode", ["A", "B"])
def test_mode_a_and_b_meters_are_read_from_their_readout(mode):
    meters = make_meters(2, password=PASSWORD)
    meters[0].mode = mode
    meters[0].clock_offset_s = -90

    async def body(fleet):
        async with Iec21Session(settings(fleet, meters[0], exchange_log=True)) as meter:
            assert base.READ_LOAD_PROFILE in meter.capabilities  # not known before sign-on
            regs = await meter.read_registers(["1.8.0", "2.8.0"])
            reading = await meter.read_clock()  # from the readout: no programming mode
            caps = meter.capabilities
            with pytest.raises(NoProgrammingMode):
                await meter.read_load_profile(LOAD_PROFILE, NOW - timedelta(hours=1), NOW)
            with pytest.raises(NoProgrammingMode):
                await meter.set_clock()
            log = meter.exchange_log
        async with Iec21Session(settings(fleet, meters[0])) as meter:
            first = await meter.read_clock()  # password given, clock asked first: still read
        async with Iec21Session(settings(fleet, meters[1])) as meter:  # its neighbour: mode C
            neighbour = await meter.read_load_profile(LOAD_PROFILE, NOW - timedelta(hours=1), NOW)
        return regs, reading, caps, log, first, neighbour

    regs, reading, caps, log, first, neighbour = run(with_fleet(meters, body))
    expected = values.expected(meters[0].serial, NOW)
    assert [r.value for r in regs] == [expected["1-0:1.8.0*255"], expected["1-0:2.8.0*255"]]
    assert reading.meter_time == first.meter_time == NOW - timedelta(seconds=90)
    assert base.SET_CLOCK not in caps and base.READ_LOAD_PROFILE not in caps
    assert base.READ_REGISTERS in caps
    # No option select was sent: the meter sent its readout after its identification.
    assert not any(e.direction == "tx" and e.data.startswith(codec.ACK + b"0") for e in log)
    assert len(neighbour.rows) == 4


def test_the_identification_says_the_mode_and_mode_b_rate():
    c = codec.parse_identification(b"/AMi5SIM21\r\n")
    b = codec.parse_identification(b"/AMiESIM21\r\n")
    a = codec.parse_identification(b"/AMi:SIM21\r\n")
    assert (c.mode, c.baud_rate) == ("C", 9600)
    assert (b.mode, b.baud_rate) == ("B", 9600)
    assert (a.mode, a.baud_rate) == ("A", None)
    assert codec.parse_identification(b"/AMiGSIM\r\n").mode == "B"  # reserved: rate unknown


def test_a_mode_b_meter_switches_the_serial_line_in_place():
    meters = make_meters(1, password=PASSWORD)
    meters[0].mode = "B"

    async def body(fleet):
        path = await fleet.start_pty()
        s = Iec21Settings(url=path, address=meters[0].address, timeout=2, serial_framing="8N1")
        async with Iec21Session(s) as meter:
            regs = await meter.read_registers(["1.8.0"])
            return regs, meter._transport.baudrate

    regs, rate = run(with_fleet(meters, body))
    assert regs[0].value == values.expected(meters[0].serial, NOW)["1-0:1.8.0*255"]
    assert rate == 9600


# ----------------------------------------------------------------- read_meter


def test_read_meter_prints_clock_registers_profile_and_events(capsys):
    meters = make_meters(1, password=PASSWORD)
    since, until = NOW - timedelta(hours=2), NOW

    async def body(fleet):
        argv = [
            "--protocol",
            "iec62056-21",
            "--url",
            fleet.url,
            "--device-address",
            meters[0].address,
            "--password",
            PASSWORD,
            "--what",
            "clock,registers,profile,events",
            "--since",
            since.isoformat(),
            "--until",
            until.isoformat(),
        ]
        return await asyncio.to_thread(cli.main, argv)

    assert run(with_fleet(meters, body)) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["profile"]["rows"]
    expected = model_rows(meters[0].serial, since, until)
    assert [r["timestamp"] for r in rows] == [
        at.isoformat().replace("+00:00", "Z") for at in expected
    ]
    assert [[Decimal(v) for v in r["values"]] for r in rows] == [list(v) for v in expected.values()]
    assert out["events"] == [
        {
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "code": code,
            "log": EVENT_LOG,
            "data": [],
        }
        for at, code in model.events(meters[0].serial, since, until)
    ]
    assert out["clock"]["meter_time"] == "2025-06-15T12:07:30Z"
