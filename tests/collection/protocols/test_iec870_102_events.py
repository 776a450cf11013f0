"""IEC 870-5-102 beyond the load profile: golden frames and ASDUs of an independent public
implementation, events (``M_SP_TA_2``) and billing closures (``M_TA_VM_2``, "cierres") against
our simulator, the summer-time flag to UTC across both EU changes, and Hypothesis on the new
decoders (only typed errors).

The golden byte vectors are test data taken from gisce/iec870ree (GPL-3.0, Python), a client
for Spanish REE meters written apart from this project: tests/test_base_asdu.py (commit
50a6f3c4f4f8a0d3bcb0600f22b57b545c6d0977), tests/test_protocol.py (commit
2899d0732c190293010224a1d52232b42c21f3e9) and tests/test_app_asdu.py (commit
1902cee7ded5920090c9092107b0f1faf03cafbb). Their expectations are restated here in our terms
(UTC from the wall time and the SU flag); no code of theirs is used.
"""

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
from collection.protocols.errors import FrameError, NotSupported
from collection.protocols.iec870_102 import codec as c
from collection.protocols.iec870_102.session import (
    DAILY_BILLING,
    MONTHLY_BILLING,
    REGISTERS,
    Iec102Session,
)
from collection.simulators import model
from collection.simulators.iec870_102 import server as sim
from collection.simulators.iec870_102.server import make_meters
from tests.collection.protocols.test_iec870_102 import settings, with_fleet

NOW = datetime(2025, 11, 10, 9, 7, 30, tzinfo=UTC)
PASSWORD = 7654321
AUTUMN = datetime(2025, 10, 26, 1, 0, tzinfo=UTC)  # 03:00 CEST -> 02:00 CET
SPRING = datetime(2025, 3, 30, 1, 0, tzinfo=UTC)  # 02:00 CET -> 03:00 CEST


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ----------------------------------------------------------------- golden vectors (gisce)


@pytest.mark.parametrize(
    ("wire", "frame"),
    [
        # test_base_asdu.py: fixed frames to/from link address 0x870C (34572)
        ("10 00 0c 87 93 16", c.Frame("fixed", 0x00, 34572)),
        ("10 49 0c 87 DC 16", c.Frame("fixed", 0x49, 34572)),  # request link status
        # C_AC_NA_2 (183), SEND/CONFIRM with FCB and FCV, measuring point 1, passwords 7, 8
        (
            "68 0D 0D 68 73 0C 87 B7 01 06 01 00 00 07 00 00 00 CC 16",
            c.Frame("variable", 0x73, 34572, bytes.fromhex("B7 01 06 01 00 00 07 00 00 00")),
        ),
        (
            "68 0d 0d 68 73 0c 87 b7 01 06 01 00 00 08 00 00 00 cd 16",
            c.Frame("variable", 0x73, 34572, bytes.fromhex("B7 01 06 01 00 00 08 00 00 00")),
        ),
        # test_protocol.py: the meter's answers from link address 0xD195 (53653)
        (
            "68 0d 0d 68 08 95 d1 b7 01 07 01 00 00 01 00 00 00 2f 16",
            c.Frame("variable", 0x08, 53653, bytes.fromhex("b7 01 07 01 00 00 01 00 00 00")),
        ),
        ("10 0b 95 d1 71 16", c.Frame("fixed", 0x0B, 53653)),  # link status answer
        ("10 00 95 d1 66 16", c.Frame("fixed", 0x00, 53653)),  # link reset acknowledged
    ],
)
def test_golden_frames_of_an_independent_implementation(wire, frame):
    data = bytes.fromhex(wire)
    assert c.decode(data) == frame
    assert c.encode(frame) == data
    frames, rest = c.split(data + data[:3])
    assert frames == [frame] and rest == data[:3]


def test_golden_session_opening_and_its_confirmation_decode_as_our_session_reads_them():
    opening = bytes.fromhex("68 0D 0D 68 73 0C 87 B7 01 06 01 00 00 07 00 00 00 CC 16")
    request = c.Asdu.decode(c.decode(opening).asdu)
    assert (request.type_id, request.cause, request.common_address, request.objects) == (
        c.C_AC_NA_2,
        c.COT_ACTIVATION,
        1,
        (7).to_bytes(4, "little"),
    )
    answer = bytes.fromhex("68 0d 0d 68 08 95 d1 b7 01 07 01 00 00 01 00 00 00 2f 16")
    confirm = c.Asdu.decode(c.decode(answer).asdu)
    assert (confirm.type_id, confirm.cause, confirm.negative) == (
        c.C_AC_NA_2,
        c.COT_ACTIVATION_CON,
        False,
    )
    # Our own request for the same meter is byte for byte theirs.
    ours = c.variable(
        c.primary_control(c.FN_SEND_CONFIRM, True),
        34572,
        c.Asdu(c.C_AC_NA_2, c.COT_ACTIVATION, 1, objects=(8).to_bytes(4, "little")).encode(),
    )
    assert ours == bytes.fromhex("68 0d 0d 68 73 0c 87 b7 01 06 01 00 00 08 00 00 00 cd 16")


def test_golden_time_tags():
    # TimeA (CP40): 2009-09-18 00:01 and 2010-02-07 11:00, standard time (offset 0: wall time)
    assert c.decode_cp40(bytes.fromhex("01 00 12 09 09"), 0) == (utc(2009, 9, 18, 0, 1), False)
    assert c.decode_cp40(bytes.fromhex("00 0b 07 02 0a"), 0) == (utc(2010, 2, 7, 11, 0), False)
    # TimeB (CP56): 2019-08-28 11:37:36.864 wall time with SU set -> 09:37:36.864 UTC in Spain
    at, summer = c.decode_cp56(bytes.fromhex("00 90 25 8b 7c 08 13"), 60)
    assert summer and at == utc(2019, 8, 28, 9, 37, 36, 864000)
    # M_TI_TA_2's answer: 2018-08-18 04:42:25.600 (no SU; the hour byte's bit 6 is reserved)
    at, summer = c.decode_cp56(bytes.fromhex("00 64 2a 44 12 08 12"), 0)
    assert not summer and at == utc(2018, 8, 18, 4, 42, 25, 600000)
    # Our CP40 of 2018-07-01 01:00 (a Sunday, day of week 7) is theirs.
    assert c.encode_cp40(datetime(2018, 7, 1, 1, 0), False) == bytes.fromhex("00 01 e1 07 12")


def test_golden_integrated_totals_request_and_answer():
    # C_CI_NU_2 / C_CI_NT_2 objects: addresses 1..8 from 2018-07-01 01:00 to 2018-08-01 00:00
    objects = bytes.fromhex("01 08 00 01 e1 07 12 00 00 61 08 12")
    assert (objects[0], objects[1]) == (1, 8)
    assert c.decode_cp40(objects[2:7], 0)[0] == utc(2018, 7, 1, 1, 0)
    assert c.decode_cp40(objects[7:12], 0)[0] == utc(2018, 8, 1, 0, 0)
    # M_IT_TK_2: eight totals (7 and 8 invalid) at 2018-07-01 01:00 summer time
    answer = bytes.fromhex(
        "01 04 00 00 00 00 02 00 00 00 00 00 03 1b 00 00 00 00 04 00 00 00 00 00"
        "05 00 00 00 00 00 06 00 00 00 00 00 07 00 00 00 00 80 08 00 00 00 00 80"
        "00 81 e1 07 12"
    )
    record = c.decode_totals(c.Asdu(c.M_IT_TK_2, c.COT_REQUEST, 1, 11, answer, count=8), 60)
    assert record.summer and record.end == utc(2018, 6, 30, 23, 0)  # 01:00 CEST
    assert [(t.address, t.value, t.quality) for t in record.totals] == [
        (1, 4, 0),
        (2, 0, 0),
        (3, 27, 0),
        (4, 0, 0),
        (5, 0, 0),
        (6, 0, 0),
        (7, 0, c.Q_INVALID),
        (8, 0, c.Q_INVALID),
    ]


def test_golden_billing_closure():
    # M_TA_VM_2: contract total (address 20) of July 2018 (summer time)
    payload = bytes.fromhex(
        "14 74 37 3b 00 c0 6e 00 00 00 fb 59 1c 00 ba 5c 00 00 00 e4 bd 05 00 db 06 00 00 00"
        "00 00 00 00 80 00 00 00 00 80 65 01 00 00 0f 87 f2 07 12 00 00 00 00 00 80 00 80 e1"
        "07 12 00 80 61 08 12"
    )
    [closure] = c.decode_closures(c.Asdu(c.M_TA_VM_2, c.COT_REQUEST, 1, 134, payload), 60)
    assert closure == c.Closure(
        address=20,
        active=c.Energy(3880820, 28352, 0),
        inductive=c.Energy(1858043, 23738, 0),
        capacitive=c.Energy(376292, 1755, 0),
        max_demand=357,
        max_demand_at=utc(2018, 7, 18, 5, 15),  # 07:15 CEST
        max_demand_quality=0,
        excess=0,
        excess_quality=c.Q_INVALID,
        start=utc(2018, 6, 30, 22, 0),  # 2018-07-01 00:00 CEST
        end=utc(2018, 7, 31, 22, 0),  # 2018-08-01 00:00 CEST
    )
    # and back, byte for byte but for one day of week: their meter wrote 7 (Sunday) for
    # Wednesday 18 July 2018 in the demand's tag; decoding ignores the day of week.
    ours = c.encode_closure(closure, 60, lambda at: True)
    assert ours[:44] + ours[45:] == payload[:44] + payload[45:]
    assert (ours[44], payload[44]) == (0x72, 0xF2)
    # C_TA_VM_2 objects: the range 2018-07-01 01:00 .. 2018-08-01 00:00
    tags = bytes.fromhex("00 01 e1 07 12 00 00 61 08 12")
    assert [c.decode_cp40(tags[i : i + 5], 0)[0] for i in (0, 5)] == [
        utc(2018, 7, 1, 1, 0),
        utc(2018, 8, 1, 0, 0),
    ]


# ----------------------------------------------------------------- decoders under Hypothesis


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 127), st.integers(-720, 840))
def test_event_and_closure_decoders_raise_only_frame_errors(data, count, offset):
    for decode in (c.decode_points, c.decode_closures):
        try:
            decode(c.Asdu(1, c.COT_REQUEST, 1, 52, data, count=count), offset)
        except FrameError:
            pass


_WHEN = st.datetimes(
    min_value=datetime(2001, 1, 2), max_value=datetime(2098, 12, 30), timezones=st.just(UTC)
).map(lambda at: at.replace(microsecond=at.microsecond // 1000 * 1000))


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 127), st.booleans(), _WHEN), max_size=20)
)
def test_events_round_trip_through_wall_time_and_the_su_flag(events):
    points = [c.SinglePoint(a, n, s, at, c.eu_summer(at)) for a, n, s, at in events]
    data = c.encode_points(points, 60)
    assert c.decode_points(c.Asdu(1, 5, 1, 52, data, count=len(points)), 60) == points


# ----------------------------------------------------------------- events vs the simulator


def expected_events(serial, record, start, end) -> list[base.MeterEvent]:
    log = f"0-0:99.98.{record - 52}*255"
    return [
        base.MeterEvent(p.at, p.address << 8 | p.number, log, (int(p.start),))
        for p in sim.points(serial, record, start, end)
    ]


def test_events_of_each_record_equal_the_model():
    meters = make_meters(2, password=PASSWORD)
    start, end = NOW - timedelta(days=60), NOW

    async def body(fleet):
        out = {}
        for m in meters:
            async with Iec102Session(settings(fleet, m)) as s:
                for n in range(4):
                    out[m.serial, 52 + n] = await s.read_events(f"0-0:99.98.{n}*255", start, end)
        return out

    got = run(with_fleet(meters, body, NOW))
    supply = 0
    for m in meters:
        for record in (52, 53, 54, 55):
            assert got[m.serial, record] == expected_events(m.serial, record, start, end)
        # Every supply event of the model is there (power failures start and end).
        model_codes = [
            code for _at, code in model.events(m.serial, start, end) if sim.EVENTS[code][0] == 52
        ]
        assert len(got[m.serial, 52]) == len(model_codes)
        supply += len(model_codes)
    assert supply >= 4  # about a quarter of the days has an incident
    assert got[meters[0].serial, 55] == []  # nothing in that record: no rows, no error


@pytest.mark.parametrize("change", [AUTUMN, SPRING])
def test_the_summer_flag_gives_utc_across_a_change(change):
    """Around a change the meter's wall times repeat (autumn) or jump (spring): the clock
    events of the change are one instant told twice, and two failures at the same autumn wall
    time 02:30 are an hour apart in UTC."""
    meters = make_meters(1, password=PASSWORD)
    first, second = change - timedelta(minutes=30), change + timedelta(minutes=30)
    meters[0].extra_events = [
        (55, c.SinglePoint(3, 4, True, first, sim.local_tag(first)[1])),
        (55, c.SinglePoint(3, 4, False, second, sim.local_tag(second)[1])),
    ]
    start, end = change - timedelta(hours=2), change + timedelta(hours=2)

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            clock = await s.read_events("0-0:99.98.1*255", start, end)
            marks = await s.read_events("0-0:99.98.3*255", start, end)
        return clock, marks

    clock, marks = run(with_fleet(meters, body, NOW))
    assert [(e.timestamp, e.code) for e in clock] == [(change, 7 << 8 | 9), (change, 7 << 8 | 11)]
    assert [e.timestamp for e in marks] == [first, second]
    walls = [sim.local_tag(at)[0] for at in (first, second)]
    if change == AUTUMN:
        assert walls[0] == walls[1] == datetime(2025, 10, 26, 2, 30)  # the same wall time
    else:
        assert walls == [datetime(2025, 3, 30, 1, 30), datetime(2025, 3, 30, 3, 30)]


def test_an_unknown_event_log_is_not_supported_before_any_byte():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            with pytest.raises(NotSupported):
                await s.read_events("0-0:99.97.0*255", NOW - timedelta(days=1), NOW)
            return meters[0].requests

    assert run(with_fleet(meters, body, NOW)) == 1  # the password only


# ----------------------------------------------------------------- closures vs the simulator


def test_monthly_closures_are_the_billing_profile_exactly():
    meters = make_meters(1, password=PASSWORD)
    serial = meters[0].serial
    start, end = datetime(2025, 7, 15, tzinfo=UTC), NOW

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            return await s.read_load_profile(MONTHLY_BILLING, start, end)

    block = run(with_fleet(meters, body, NOW))
    # Madrid month ends, UTC: August..November, summer until October's end (22:00 / 23:00).
    ends = [utc(2025, 7, 31, 22), utc(2025, 8, 31, 22), utc(2025, 9, 30, 22), utc(2025, 10, 31, 23)]
    assert [r.timestamp for r in block.rows] == ends
    obis = [ch.obis for ch in block.channels]
    assert obis[:4] == ["1-0:1.8.0*255", "1-0:5.8.0*255", "1-0:8.8.0*255", "1-0:1.6.0*255"]
    assert {"1-0:1.8.1*255", "1-0:1.8.2*255", "1-0:1.6.1*255"} <= set(obis)
    assert "1-0:5.8.1*255" not in obis  # invalid in every closure: the meter has none
    units = {ch.obis: ch.unit for ch in block.channels}
    assert units["1-0:1.6.0*255"] == "W" and units["1-0:5.8.0*255"] == "varh"
    for row in block.rows:
        got = dict(zip(obis, row.values, strict=True))
        n = model.completed_intervals(row.timestamp)
        assert got["1-0:1.8.0*255"] == model.cumulative(serial, 1, n)
        assert got["1-0:5.8.0*255"] == model.cumulative(serial, 3, n)
        assert got["1-0:8.8.0*255"] == model.cumulative(serial, 4, n)
        assert got["1-0:1.8.1*255"] == model.tariff_register(serial, 1, row.timestamp)
        assert got["1-0:1.8.2*255"] == model.tariff_register(serial, 2, row.timestamp)
        assert got["1-0:1.8.1*255"] + got["1-0:1.8.2*255"] == got["1-0:1.8.0*255"]
        assert row.status == 0
        begin = (row.timestamp - timedelta(days=27)).replace(day=1)
        month = [
            model.interval_value(serial, 1, k)
            for k in range(
                model.completed_intervals(sim.month_ends(begin, row.timestamp, NOW)[-1][0]), n
            )
        ]
        assert got["1-0:1.6.0*255"] == 4 * max(month)
        assert all(isinstance(v, Decimal) for v in got.values() if v is not None)


def test_contracts_two_and_three_are_their_own_billing_profiles():
    """Contract II and III closures (records 135, 136) as billing profiles 0-0:98.1.1 and
    0-0:98.1.2: each asks its own record (the simulator's contracts give the same values)."""
    meters = make_meters(1, password=PASSWORD)
    start, end = datetime(2025, 9, 15, tzinfo=UTC), NOW

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            return [await s.read_load_profile(f"0-0:98.1.{n}*255", start, end) for n in (0, 1, 2)]

    first, second, third = run(with_fleet(meters, body, NOW))
    assert meters[0].closure_records == [134, 135, 136]
    assert first.rows and second.rows == first.rows == third.rows
    assert (second.profile, third.profile) == ("0-0:98.1.1*255", "0-0:98.1.2*255")


def test_daily_closures_are_the_absolute_totals_at_each_day_end():
    meters = make_meters(1, password=PASSWORD)
    serial = meters[0].serial
    start, end = NOW - timedelta(days=3), NOW

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            return await s.read_load_profile(DAILY_BILLING, start, end)

    block = run(with_fleet(meters, body, NOW))
    assert block.period_seconds == 86400
    assert [ch.obis for ch in block.channels] == list(REGISTERS)
    assert [r.timestamp for r in block.rows] == [utc(2025, 11, d) for d in (8, 9, 10)]
    for row in block.rows:
        n = model.completed_intervals(row.timestamp)
        expected = [model.cumulative(serial, 1, n), model.cumulative(serial, 2, n)]
        expected += [model.cumulative(serial, 3, n), 0, 0, model.cumulative(serial, 4, n)]
        assert list(row.values) == expected


def test_no_closure_in_the_range_is_no_rows():
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        async with Iec102Session(settings(fleet, meters[0])) as s:
            return await s.read_load_profile(MONTHLY_BILLING, NOW - timedelta(days=5), NOW)

    assert run(with_fleet(meters, body, NOW)).rows == ()


def test_read_meter_reads_the_closures_and_an_event_log(capsys):
    meters = make_meters(1, password=PASSWORD)

    async def body(fleet):
        argv = ["--protocol", "iec870-102", "--url", fleet.url, "--link-address", "1"]
        argv += ["--measuring-point", "1", "--password", str(PASSWORD), "--what", "profile,events"]
        argv += ["--profile", MONTHLY_BILLING, "--event-log", "0-0:99.98.1*255"]
        argv += ["--since", "2025-10-01T00:00:00Z", "--until", NOW.isoformat()]
        return await asyncio.to_thread(cli.main, argv)

    assert run(with_fleet(meters, body, NOW)) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["timestamp"] for r in out["profile"]["rows"]] == ["2025-10-31T23:00:00Z"]
    assert [e["code"] for e in out["events"]] == [7 << 8 | 9, 7 << 8 | 11]  # the autumn change
    assert {e["timestamp"] for e in out["events"]} == {"2025-10-26T01:00:00Z"}


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([c.C_AC_NA_2, c.C_TI_NA_2, c.C_CS_TA_2, c.C_CI_NU_2, c.C_SP_NB_2, c.C_TA_VM_2]),
    st.integers(0, 255),
    st.binary(max_size=40),
)
def test_the_simulators_station_answers_any_request_or_raises_a_frame_error(type_id, record, data):
    """The simulator's side of the wire: any activation gets an acknowledgement (its answer
    queued, negative ones included) or a typed FrameError, never a Python error."""
    meter = make_meters(1, password=PASSWORD)[0]
    meter._authenticated = True
    asdu = c.Asdu(type_id, c.COT_ACTIVATION, meter.measuring_point, record, data, count=1)
    frame = c.Frame("variable", c.primary_control(c.FN_SEND_CONFIRM, True), 1, asdu.encode())
    try:
        answer = meter.handle(frame, NOW)
    except FrameError:
        return
    assert answer == bytes([c.ACK]) and meter._queue
    poll = c.Frame("fixed", c.primary_control(c.FN_REQUEST_CLASS_2, False), 1)
    c.decode(meter.handle(poll, NOW))  # the first queued answer is a well-formed frame
