"""IEC 870-5-102 driver: the FT1.2/ASDU codec (pure, golden byte vectors computed by hand
from the standard, Hypothesis on the parser), and the session against our simulator over
loopback: password, clock, hourly and quarter-hourly totals equal to the value model, quality
bits, faults as typed errors, registry and CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from collection.protocols import base, cli, registry
from collection.protocols.driver import Endpoint
from collection.protocols.errors import (
    AuthenticationFailed,
    FrameError,
    MeterTimeout,
    NotAssociated,
    NotSupported,
    ProtocolError,
)
from collection.protocols.iec870_102 import codec as c
from collection.protocols.iec870_102.session import CHANNELS, Iec102Session
from collection.protocols.iec870_102.settings import Iec102Settings
from collection.simulators import cli as sim_cli
from collection.simulators import model
from collection.simulators.iec870_102.server import Fault, Iec102Fleet, make_meters

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)  # summer time in Madrid
WINTER = datetime(2025, 1, 20, 9, 7, 30, tzinfo=UTC)
PASSWORD = 7654321


def run(coro):
    return asyncio.run(coro)


def settings(fleet, meter, **overrides):
    kwargs = dict(
        url=fleet.url,
        link_address=meter.link_address,
        measuring_point=meter.measuring_point,
        password=meter.password,
        timeout=2.0,
        retries=1,
    )
    kwargs.update(overrides)
    return Iec102Settings(**kwargs)


async def with_fleet(meters, body, now=NOW):
    fleet = Iec102Fleet(meters, clock=lambda: now)
    await fleet.start()
    try:
        return await body(fleet)
    finally:
        await fleet.close()


# ----------------------------------------------------------------- codec (pure)


@pytest.mark.parametrize(
    ("frame", "wire"),
    [
        # link reset (PRM, function 0) to link address 1: CS = 0x40 + 0x01 + 0x00
        (c.Frame("fixed", 0x40, 1), "10 40 01 00 41 16"),
        # class 2 request, FCB=1 FCV=1 (0x40|0x20|0x10|0x0B): CS = 0x7B + 0x01
        (c.Frame("fixed", 0x7B, 1), "10 7B 01 00 7C 16"),
        # request link status to address 0x0102 (little-endian 02 01): CS = 0x49+0x02+0x01
        (c.Frame("fixed", 0x49, 0x0102), "10 49 02 01 4C 16"),
        # secondary ACK fixed frame from address 1
        (c.Frame("fixed", 0x00, 1), "10 00 01 00 01 16"),
        # single-character acknowledge
        (c.Frame("ack"), "E5"),
        # SEND/CONFIRM (0x73) of C_AC_NA_2 (0xB7), 1 object, activation, point 1, record 0,
        # password 1: L = 13, CS = 0x73+0x01+0xB7+0x01+0x06+0x01+0x01 = 0x134 -> 0x34
        (
            c.Frame("variable", 0x73, 1, bytes.fromhex("B7 01 06 01 00 00 01 00 00 00")),
            "68 0D 0D 68 73 01 00 B7 01 06 01 00 00 01 00 00 00 34 16",
        ),
    ],
)
def test_golden_frames(frame, wire):
    data = bytes.fromhex(wire)
    assert c.encode(frame) == data
    assert c.decode(data) == frame


def test_control_fields_and_fcb():
    assert c.primary_control(c.FN_RESET_LINK, None) == 0x40
    assert c.primary_control(c.FN_REQUEST_STATUS, None) == 0x49
    assert c.primary_control(c.FN_SEND_CONFIRM, True) == 0x73
    assert c.primary_control(c.FN_SEND_CONFIRM, False) == 0x53
    assert c.primary_control(c.FN_REQUEST_CLASS_2, False) == 0x5B


def test_asdu_round_trip_and_negative_bit():
    asdu = c.Asdu(c.C_CI_NU_2, c.COT_NO_RECORD, 0x1234, 11, b"\x01\x06", 1, negative=True)
    data = asdu.encode()
    assert data[:6] == bytes([123, 1, 0x40 | 13, 0x34, 0x12, 11])
    assert c.Asdu.decode(data) == asdu


def test_cp40_summer_flag_to_utc():
    # 2025-06-15 (a Sunday) 14:30 CEST: minute 30, hour 14 | SU, day 15 | dow 7 << 5, 6, 25
    tag = c.encode_cp40(datetime(2025, 6, 15, 14, 30), summer=True)
    assert tag == bytes.fromhex("1E 8E EF 06 19")
    assert c.decode_cp40(tag, 60) == (datetime(2025, 6, 15, 12, 30, tzinfo=UTC), True)
    # same wall time in winter (no SU): one hour later in UTC than with SU
    winter = c.encode_cp40(datetime(2025, 1, 15, 14, 30), summer=False)
    assert c.decode_cp40(winter, 60)[0] == datetime(2025, 1, 15, 13, 30, tzinfo=UTC)
    assert c.eu_summer(datetime(2025, 3, 30, 0, 59, tzinfo=UTC)) is False
    assert c.eu_summer(datetime(2025, 3, 30, 1, 0, tzinfo=UTC)) is True
    assert c.eu_summer(datetime(2025, 10, 26, 1, 0, tzinfo=UTC)) is False


def test_cp56_round_trip():
    local = datetime(2025, 6, 15, 14, 30, 12, 345000)
    at, summer = c.decode_cp56(c.encode_cp56(local, True), 60)
    assert at == datetime(2025, 6, 15, 12, 30, 12, 345000, tzinfo=UTC) and summer


def test_totals_round_trip_with_quality():
    totals = (c.Total(1, 1234, 0), c.Total(2, 0, c.Q_INVALID | c.Q_OVERFLOW))
    asdu = c.Asdu(c.M_IT_TK_2, c.COT_REQUEST, 1, 11, c.encode_totals(
        totals, c.encode_cp40(datetime(2025, 1, 15, 14, 0), False)), count=2)  # fmt: skip
    record = c.decode_totals(c.Asdu.decode(asdu.encode()), 60)
    assert record.totals == totals
    assert record.end == datetime(2025, 1, 15, 13, 0, tzinfo=UTC)


def test_split_keeps_the_incomplete_rest():
    wire = bytes.fromhex("E5 10 00 01 00 01 16 68 0D 0D")
    frames, rest = c.split(wire)
    assert [f.kind for f in frames] == ["ack", "fixed"] and rest == wire[-3:]


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("10 40 01 00 42 16", c.ChecksumError),
        ("10 40 01 00 41 17", c.GarbageError),
        ("55", c.GarbageError),
        ("68 0D 0C 68", c.GarbageError),
        ("68 02 02 68 00 00 02 16", c.GarbageError),
    ],
)
def test_bad_frames_are_typed(wire, error):
    with pytest.raises(error):
        c.decode(bytes.fromhex(wire))


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_parser_raises_only_frame_errors(data):
    for parse in (c.decode, c.split):
        try:
            parse(data)
        except FrameError:
            pass


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 127))
def test_asdu_and_time_tag_decoders_raise_only_frame_errors(data, count):
    """What a variable frame carries: any bytes decode or raise a FrameError subclass."""
    for parse in (
        lambda: c.Asdu.decode(data),
        lambda: c.decode_totals(c.Asdu(c.M_IT_TK_2, 5, 1, 11, data, count), 60),
        lambda: c.decode_cp40(data[:5], 60),
        lambda: c.decode_cp56(data[:7], 60),
    ):
        try:
            parse()
        except FrameError:
            pass


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=252))
def test_variable_frames_round_trip(control, address, asdu):
    frame = c.Frame("variable", control, address, asdu)
    assert c.decode(c.encode(frame)) == frame


# ----------------------------------------------------------------- session over loopback


def expected_rows(serial, start, end, period_s, now):
    rows = []
    at = start
    while at <= end and at <= now:
        n = model.completed_intervals(at)
        k = period_s // model.INTERVAL_S

        def inc(ch, n=n, k=k):
            return model.cumulative(serial, ch, n) - model.cumulative(serial, ch, n - k)

        rows.append((at, (inc(1), inc(2), inc(3), 0, 0, inc(4))))
        at += timedelta(seconds=period_s)
    return rows


@pytest.mark.parametrize(("record", "period_s", "now"), [(11, 3600, NOW), (12, 900, WINTER)])
def test_profile_equals_the_model(record, period_s, now):
    meters = make_meters(2, password=PASSWORD)
    meter = meters[1]
    start = now.replace(minute=0, second=0) - timedelta(hours=5)
    end = now

    async def body(fleet):
        async with Iec102Session(settings(fleet, meter, profile_record=record)) as s:
            return await s.read_load_profile("1-0:99.1.0*255", start, end)

    block = run(with_fleet(meters, body, now))
    assert block.period_seconds == period_s
    assert [ch.obis for ch in block.channels] == [obis for obis, _ in CHANNELS.values()]
    got = [(r.timestamp, tuple(int(v) for v in r.values)) for r in block.rows]
    assert got == expected_rows(meter.serial, start, end, period_s, now)
    assert all(r.status == 0 for r in block.rows)
    assert len(got) == (6 if period_s == 3600 else 21)


def test_quality_bits_reach_the_row():
    meters = make_meters(1, password=PASSWORD)
    bad = NOW.replace(minute=0, second=0) - timedelta(hours=1)
    moved = bad - timedelta(hours=1)
    meters[0].quality = {bad: c.Q_INVALID | c.Q_OVERFLOW, moved: c.Q_TIME_CHANGED | c.Q_ADJUSTED}

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            return await s.read_load_profile("p", moved - timedelta(hours=1), bad)

    rows = run(with_fleet(meters, body)).rows
    # as the contract's (IEC 62056 profile status) byte: data not valid 0x04, clock 0x20
    assert [r.status for r in rows] == [0, 0x20, 0x04]
    assert rows[2].values == (None,) * 6 and rows[1].values[0] is not None


def test_clock_in_summer_and_winter():
    for now in (NOW, WINTER):
        meters = make_meters(1, password=PASSWORD)
        meters[0].clock_drift_s = 42.5

        async def body(fleet, meter=meters[0]):
            async with Iec102Session(settings(fleet, meter)) as s:
                return await s.read_clock()

        clock = run(with_fleet(meters, body, now))
        assert clock.meter_time == now + timedelta(seconds=42.5)
        assert clock.status == (0x80 if now is NOW else 0)


def test_meters_on_a_serial_line_pty_are_read_one_after_another():
    meters = make_meters(2, password=PASSWORD)
    start = NOW.replace(minute=0, second=0) - timedelta(hours=2)

    async def body():
        fleet = Iec102Fleet(meters, clock=lambda: NOW)
        path = await fleet.start_pty()
        try:
            out = []
            for meter in meters:
                s = Iec102Settings(path, meter.link_address, meter.measuring_point, PASSWORD)
                async with Iec102Session(s) as session:
                    out.append(await session.read_load_profile("p", start, NOW))
            return out
        finally:
            await fleet.close()

    for block, meter in zip(run(body()), meters, strict=True):
        got = [(r.timestamp, tuple(int(v) for v in r.values)) for r in block.rows]
        assert got == expected_rows(meter.serial, start, NOW, 3600, NOW)


def test_set_clock_moves_the_meter_clock():
    meters = make_meters(1, password=PASSWORD)
    meters[0].clock_drift_s = -300
    target = NOW + timedelta(seconds=12.25)

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            return await s.set_clock(target)

    clock = run(with_fleet(meters, body))
    assert clock.meter_time == target and meters[0].clock_drift_s == 12.25


def test_profile_across_the_autumn_change_is_one_row_per_utc_hour():
    """On 2025-10-26 the meter's wall clock shows 02:00-03:00 twice; SU tells them apart."""
    meters = make_meters(1, password=PASSWORD)
    now = datetime(2025, 10, 26, 6, 30, tzinfo=UTC)
    start, end = datetime(2025, 10, 25, 23, tzinfo=UTC), datetime(2025, 10, 26, 3, tzinfo=UTC)

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            return await s.read_load_profile("p", start, end)

    block = run(with_fleet(meters, body, now))
    assert [r.timestamp for r in block.rows] == [start + timedelta(hours=h) for h in range(5)]
    expected = expected_rows(meters[0].serial, start, end, 3600, now)
    assert [tuple(int(v) for v in r.values) for r in block.rows] == [v for _, v in expected]


def test_empty_range_is_no_rows():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            future = NOW + timedelta(days=1)
            return await s.read_load_profile("p", future, future + timedelta(hours=2))

    assert run(with_fleet(meters, body)).rows == ()


def test_wrong_password_is_authentication_failed():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        session = Iec102Session(settings(fleet, meters[0], password=PASSWORD + 1))
        with pytest.raises(AuthenticationFailed):
            await session.open()
        with pytest.raises(NotAssociated):
            await session.read_clock()

    run(with_fleet(meters, body))


def test_password_never_logged():
    meters = make_meters(1, password=PASSWORD)
    s_ = None

    async def body(fleet):
        nonlocal s_
        s_ = settings(fleet, meters[0], exchange_log=True)
        async with Iec102Session(s_) as s:
            await s.read_clock()
            return s.exchange_log

    log = run(with_fleet(meters, body))
    secret = PASSWORD.to_bytes(4, "little")
    assert log and not any(secret in e.data for e in log)
    assert str(PASSWORD) not in repr(s_)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("timeout", MeterTimeout),
        ("garbage", c.GarbageError),
        ("checksum", c.ChecksumError),
        ("nack", c.LinkNack),
    ],
)
def test_faults_are_typed(kind, error):
    meters = make_meters(1, password=PASSWORD)
    meters[0].fault = Fault(kind)

    async def body(fleet):
        with pytest.raises(error) as raised:
            async with Iec102Session(settings(fleet, meters[0], timeout=0.3)) as s:
                await s.read_clock()
        return raised.value

    exc = run(with_fleet(meters, body))
    assert isinstance(exc, ProtocolError) and exc.retryable


def test_a_lost_answer_is_repeated_by_fcb_not_acted_twice():
    """A resend keeps its FCB: the meter repeats its answer instead of a new one."""
    meters = make_meters(1, password=PASSWORD)
    meter = meters[0]

    async def body(fleet):
        async with Iec102Session(settings(fleet, meter)) as s:
            before = meter.requests
            # the frame the session would send next, sent twice by hand
            control = c.primary_control(c.FN_SEND_CONFIRM, s._fcb)
            asdu = c.Asdu(c.C_TI_NA_2, c.COT_REQUEST, meter.measuring_point, count=0)
            frame = c.decode(c.variable(control, meter.link_address, asdu.encode()))
            first = meter.handle(frame, NOW)
            second = meter.handle(frame, NOW)
            return before, meter.requests, first, second

    before, after, first, second = run(with_fleet(meters, body))
    assert after == before + 1 and first == second == bytes([c.ACK])


def test_unsupported_capability_is_typed():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            with pytest.raises(NotSupported):
                await s.read_instantaneous()
            with pytest.raises(NotSupported):
                await s.relay_state()

    run(with_fleet(meters, body))


@pytest.mark.parametrize("record", [11, 12])
def test_registers_are_the_absolute_totals_of_the_last_closed_period(record):
    meters = make_meters(1, password=PASSWORD)
    serial = meters[0].serial
    now = datetime.now(UTC)  # the session asks for the periods up to the head-end's now

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0], profile_record=record)) as s:
            return await s.read_registers(
                ["1-0:1.8.0*255", "1-0:2.8.0*255", "1-0:5.8.0*255", "1-0:8.8.0*255", "1-0:9.9.9"]
            )

    values = run(with_fleet(meters, body, now))
    end = values[0].capture_time
    period = 3600 if record == 11 else 900
    assert end.timestamp() % period == 0 and now - timedelta(seconds=period) < end <= now
    assert [v.value for v in values[:4]] == [
        model.energy_register(serial, channel, end) for channel in (1, 2, 3, 4)
    ]
    assert values[0].unit == "Wh" and values[2].unit == "varh"
    assert values[4].value is None and values[4].error


# ----------------------------------------------------------------- registry and CLI


def test_registry_builds_settings_from_an_endpoint():
    driver = registry.driver("iec870_102")
    assert driver.capabilities == {
        base.READ_CLOCK,
        base.SET_CLOCK,
        base.READ_REGISTERS,
        base.READ_LOAD_PROFILE,
        base.READ_EVENTS,
    }
    endpoint = Endpoint(
        protocol="iec870_102",
        url="tcp://10.0.0.5:40000",
        password="123456",
        timeout_s=45,
        options={"link_address": 5, "measuring_point": 9},
    )
    s = registry.settings_for(endpoint)
    assert (s.link_address, s.measuring_point, s.password, s.timeout) == (5, 9, 123456, 45)
    assert registry.driver_of(s) is driver
    assert "123456" not in repr(s)
    with pytest.raises(ValueError):
        registry.settings_for(Endpoint(protocol="iec870_102", url="tcp://h:1", password="1"))
    with pytest.raises(ValueError):
        registry.settings_for(
            Endpoint(
                protocol="iec870_102",
                url="tcp://h:1",
                options={"link_address": 5, "measuring_point": 9},
            )
        )


def test_read_meter_cli_prints_json(capsys):
    meters = make_meters(3, password=PASSWORD)

    async def body(fleet):
        args = [
            "--protocol", "iec870-102", "--url", fleet.url, "--link-address", "2",
            "--measuring-point", "2", "--password", str(PASSWORD),
            "--what", "clock,registers,profile",
            "--since", "2025-06-15T08:00:00Z", "--until", "2025-06-15T10:00:00Z",
        ]  # fmt: skip
        return await asyncio.to_thread(cli.main, args)

    # registers are the last period closed by the head-end's time: the meter's is now too
    assert run(with_fleet(meters, body, datetime.now(UTC))) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["profile"]["rows"]
    assert [r["timestamp"] for r in rows] == [
        "2025-06-15T08:00:00Z",
        "2025-06-15T09:00:00Z",
        "2025-06-15T10:00:00Z",
    ]
    t = datetime(2025, 6, 15, 9, tzinfo=UTC)
    n = model.completed_intervals(t)
    assert Decimal(rows[1]["values"][0]) == model.cumulative(
        meters[1].serial, 1, n
    ) - model.cumulative(meters[1].serial, 1, n - 4)
    assert out["clock"]["meter_time"]
    assert [r["obis"] for r in out["registers"]][:2] == ["1-0:1.8.0*255", "1-0:2.8.0*255"]
    assert all(r["error"] is None for r in out["registers"])
    assert cli.main(["--protocol", "iec870-102", "--url", "tcp://127.0.0.1:1"]) == 2


def test_simulate_meters_serves_what_the_session_reads(tmp_path, capsys):
    manifest = tmp_path / "iec102.json"
    args = sim_cli.build_parser().parse_args(
        ["--protocol=iec870_102", "--count=3", "--password=42", f"--manifest={manifest}"]
    )

    async def body():
        stop = asyncio.Event()
        served = asyncio.create_task(sim_cli.run(args, stop))
        while not manifest.exists() or not manifest.stat().st_size:
            await asyncio.sleep(0.05)
        row = json.loads(manifest.read_text())[2]
        s = Iec102Settings(
            url=row["url"],
            link_address=row["link_address"],
            measuring_point=row["measuring_point"],
            password=42,
            timeout=2,
        )
        try:
            async with Iec102Session(s) as session:
                return row, await session.read_clock()
        finally:
            stop.set()
            await served

    row, clock = run(body())
    assert (row["link_address"], row["measuring_point"], row["fault"]) == (3, 3, None)
    assert abs(clock.drift_seconds) < 5
    assert capsys.readouterr().out.startswith("iec870-102 tcp://127.0.0.1:")
