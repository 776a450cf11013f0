"""Behaviour of real meters the simulator reproduces (reported by the head-end client team):
configurable load profile, capped profile buffers, AARE diagnostics for HLS-GMAC, a stale
invocation counter told apart from wrong keys, HDLC retransmission on RR, SET with
datablocks and a quiet fleet shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, time, timedelta

from dlms_cosem import dlms_data
from dlms_cosem import enumerations as E
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor

from collection.protocols.dlms import axdr
from collection.protocols.dlms import security as S
from collection.protocols.dlms.framing import PF, RR, SNRM, HdlcAddress, HdlcFrame
from collection.protocols.dlms.gurux_compat import GuruxApdu
from collection.simulators import model
from collection.simulators.dlms import apdu as A
from collection.simulators.dlms.link import HdlcLink
from collection.simulators.dlms.meter import MeterState, SimulatedMeter
from collection.simulators.dlms.objects import OBJECTS, Ctx
from collection.simulators.dlms.session import Session
from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters
from meters import obis as obis_codes

from .conftest import CLOCK, NOW, PROFILE, attr, cosem_client, get_value

LP = "1.0.99.1.0.255"
CLIENT_TITLE = b"TST00001"


def _capture(cls: int, obis: str, a: int = 2) -> bytes:
    return axdr.enc_struct(
        axdr.enc_uint16(cls),
        axdr.enc_octets(obis_codes.to_bytes(obis)),
        axdr.enc_int8(a),
        axdr.enc_uint16(0),
    )


def _range(start: datetime, end: datetime) -> RangeDescriptor:
    return RangeDescriptor(
        restricting_object=CaptureObject(attr(CLOCK, "0.0.1.0.0.255", 2)),
        from_value=start,
        to_value=end,
    )


def _dt(raw) -> datetime:
    return axdr.decode_datetime(bytes(raw))


# --- 1. load profile capture objects / capture period are writable -----------------------


def test_load_profile_capture_objects_and_period_writable(fleet, meters):
    m, other = meters[0], meters[1]
    c = cosem_client(fleet, m, "low")
    columns = [
        _capture(8, "0.0.1.0.0.255"),
        _capture(3, "1.0.2.29.0.255"),  # export interval energy first...
        _capture(3, "1.0.1.8.0.255"),  # ...then the import register (value at period end)
    ]
    with c.session():
        resp = c.set(attr(PROFILE, LP, 3), axdr.enc_array(columns))
        assert resp.result == E.DataAccessResult.SUCCESS
        resp = c.set(attr(PROFILE, LP, 4), dlms_data.DoubleLongUnsignedData(3600).to_bytes())
        assert resp.result == E.DataAccessResult.SUCCESS
        assert get_value(c, PROFILE, LP, 4) == 3600
        cols = get_value(c, PROFILE, LP, 3)
        assert [(col[0], bytes(col[1]), col[2]) for col in cols] == [
            (8, bytes([0, 0, 1, 0, 0, 255]), 2),
            (3, bytes([1, 0, 2, 29, 0, 255]), 2),
            (3, bytes([1, 0, 1, 8, 0, 255]), 2),
        ]
        rows = get_value(c, PROFILE, LP, 2, _range(NOW - timedelta(hours=6), NOW))
        # refused: a period the 15-minute model cannot honour, an uncapturable object
        resp = c.set(attr(PROFILE, LP, 4), dlms_data.DoubleLongUnsignedData(1000).to_bytes())
        assert resp.result == E.DataAccessResult.OTHER_REASON
        bad = axdr.enc_array([_capture(8, "0.0.1.0.0.255"), _capture(1, "0.0.96.1.0.255")])
        resp = c.set(attr(PROFILE, LP, 3), bad)
        assert resp.result == E.DataAccessResult.OTHER_REASON
        assert get_value(c, PROFILE, LP, 4) == 3600  # unchanged by the refusals
    end_hour = NOW.replace(minute=0, second=0)
    expected = []
    for h in range(5, -1, -1):
        end = end_hour - timedelta(hours=h)
        n_end = model.completed_intervals(end)
        expected.append(
            [
                end,
                model.cumulative(m.serial, 2, n_end) - model.cumulative(m.serial, 2, n_end - 4),
                model.cumulative(m.serial, 1, n_end),
            ]
        )
    assert [[_dt(r[0]), r[1], r[2]] for r in rows] == expected
    # per meter, and the public client may not configure
    p = cosem_client(fleet, other, "none")
    with p.session():
        assert get_value(p, PROFILE, LP, 4) == 900
        assert len(get_value(p, PROFILE, LP, 3)) == 5
        resp = p.set(attr(PROFILE, LP, 4), dlms_data.DoubleLongUnsignedData(3600).to_bytes())
        assert resp.result == E.DataAccessResult.READ_WRITE_DENIED


# --- buffer depth: attr 7 / 8 and reads without selective access ------------------------


def test_profile_buffer_is_capped():
    m = SimulatedMeter(serial="90000001")
    lp = OBJECTS[obis_codes.to_bytes(LP)]
    ctx = Ctx(m, MeterState(), NOW)
    assert axdr.decode_typed_all(lp.get(ctx, 8, None, None)).value == 960
    assert axdr.decode_typed_all(lp.get(ctx, 7, None, None)).value == 960
    rows = axdr.decode_typed_all(lp.get(ctx, 2, None, None)).as_list()
    done = model.completed_intervals(NOW)
    assert len(rows) == 960
    assert _dt(rows[0].as_list()[0].value) == model.interval_end(done - 960)
    assert _dt(rows[-1].as_list()[0].value) == model.interval_end(done - 1)

    small = SimulatedMeter(serial="90000001", profile_entries=4, event_log_entries=2)
    ctx = Ctx(small, MeterState(), NOW)
    rows = axdr.decode_typed_all(lp.get(ctx, 2, None, None)).as_list()
    assert [r.as_list()[1].value for r in rows] == [
        model.interval_value(small.serial, 1, k) for k in range(done - 4, done)
    ]
    # a range reaching before the oldest kept entry only returns what is kept
    sel = axdr.decode_typed_all(
        axdr.enc_struct(
            _capture(8, "0.0.1.0.0.255"),
            axdr.enc_octets(axdr.encode_datetime(NOW - timedelta(days=2))),
            axdr.enc_octets(axdr.encode_datetime(NOW)),
            axdr.enc_array([]),
        )
    )
    assert len(axdr.decode_typed_all(lp.get(ctx, 2, 1, sel)).as_list()) == 4
    # fresh meter: entries_in_use counts completed intervals only
    young = Ctx(m, MeterState(), model.EPOCH + timedelta(minutes=50))
    assert axdr.decode_typed_all(lp.get(young, 7, None, None)).value == 3
    log = OBJECTS[obis_codes.to_bytes("0.0.99.98.0.255")]
    assert axdr.decode_typed_all(log.get(ctx, 8, None, None)).value == 2
    assert axdr.decode_typed_all(log.get(ctx, 7, None, None)).value == 2
    events = axdr.decode_typed_all(log.get(ctx, 2, None, None)).as_list()
    want = model.events(small.serial, model.EPOCH, NOW)[-2:]
    assert [(_dt(e.as_list()[0].value), e.as_list()[1].value) for e in events] == want


# --- 2. / 3. association: diagnostics ----------------------------------------------------


def _ber(buf: bytes) -> dict[int, bytes]:
    out, pos = {}, 0
    while pos < len(buf):
        tag, n = buf[pos], buf[pos + 1]
        out[tag] = buf[pos + 2 : pos + 2 + n]
        pos += 2 + n
    return out


def _aare_result(aare: bytes) -> tuple[int, int]:
    assert aare[0] == A.AARE
    fields = _ber(aare[2:])
    return fields[0xA2][-1], fields[0xA3][-1]


def _hls_aarq(meter: SimulatedMeter, ic: int, *, keys=None) -> bytes:
    ek, ak = keys or (meter.block_key, meter.auth_key)
    gx = GuruxApdu(
        client_address=1,
        server_address=1,
        auth="high",
        password=None,
        system_title=CLIENT_TITLE,
        block_key=ek,
        auth_key=ak,
        max_pdu=1024,
    )
    return gx.aarq(ic)


def _session(meter: SimulatedMeter, state: MeterState | None = None) -> Session:
    return Session(meter, state or MeterState(), lambda: NOW)


def test_hls_gmac_aare_says_authentication_required():
    m = SimulatedMeter(serial="90000001")
    assert _aare_result(_session(m).handle(1, _hls_aarq(m, 5))) == (
        A.RESULT_ACCEPTED,
        A.DIAG_AUTHENTICATION_REQUIRED,
    )
    # LLS: no further pass, diagnostic null
    gx = GuruxApdu(
        client_address=17,
        server_address=1,
        auth="low",
        password=m.password,
        system_title=None,
        block_key=None,
        auth_key=None,
        max_pdu=1024,
    )
    assert _aare_result(_session(m).handle(17, gx.aarq())) == (A.RESULT_ACCEPTED, A.DIAG_NULL)


def test_stale_aarq_counter_distinguished_from_wrong_keys():
    m = SimulatedMeter(serial="90000001")
    state = MeterState(client_ic={1: 100})
    # wrong keys: AARE rejected-permanent, authentication-failure
    bad = _hls_aarq(m, 500, keys=(bytes(16), bytes(16)))
    assert _aare_result(_session(m, state).handle(1, bad)) == (
        A.RESULT_REJECTED_PERMANENT,
        A.DIAG_AUTHENTICATION_FAILURE,
    )
    # right keys, replayed / stale counter: invocation-counter-error with the expected value
    for ic in (100, 50):
        reply = _session(m, state).handle(1, _hls_aarq(m, ic))
        assert reply == bytes((A.EXCEPTION_RESPONSE, 1, 6)) + (101).to_bytes(4, "big")
    assert state.client_ic[1] == 100
    ok = _session(m, state).handle(1, _hls_aarq(m, 101))
    assert _aare_result(ok)[0] == A.RESULT_ACCEPTED and state.client_ic[1] == 101


# --- 4. HDLC: RR with an unchanged N(R) repeats the last I-frame -------------------------

SERVER = HdlcAddress(1, 17, 2)


def _client_frame(control: int) -> HdlcFrame:
    return HdlcFrame(SERVER, HdlcAddress(16, None, 1), control)


def _rr(nr: int) -> HdlcFrame:
    return _client_frame(RR | PF | (nr << 5))


def test_hdlc_rr_with_unchanged_nr_retransmits():
    link = HdlcLink(SERVER, max_info=32)
    link.handle(_client_frame(SNRM))
    first = link.send_apdu(bytes(range(80)))  # 83 bytes with LLC: 3 segments
    (again,), _ = link.handle(_rr(0))  # N(R) still 0: segment 0 was lost
    assert again == first
    (second,), _ = link.handle(_rr(1))
    assert second != first and (second[6] >> 1) & 7 == 1  # N(S) = 1
    (again,), _ = link.handle(_rr(1))
    assert again == second
    (third,), _ = link.handle(_rr(2))
    assert (third[6] >> 1) & 7 == 2 and not third[1] & 0x08  # last segment
    (again,), _ = link.handle(_rr(2))  # the final segment is repeated as well
    assert again == third
    (rr,), _ = link.handle(_rr(3))  # everything acknowledged: plain RR
    assert rr[6] & 0x0F == 0x01


# --- 5. SET with datablocks --------------------------------------------------------------


def _lls_session(m: SimulatedMeter, state: MeterState) -> Session:
    s = _session(m, state)
    gx = GuruxApdu(
        client_address=17,
        server_address=1,
        auth="low",
        password=m.password,
        system_title=None,
        block_key=None,
        auth_key=None,
        max_pdu=1024,
    )
    assert _aare_result(s.handle(17, gx.aarq()))[0] == A.RESULT_ACCEPTED
    return s


def _datablock(last: bool, number: int, raw: bytes) -> bytes:
    return (
        bytes((1 if last else 0,)) + number.to_bytes(4, "big") + axdr.encode_length(len(raw)) + raw
    )


def test_set_with_datablocks():
    m = SimulatedMeter(serial="90000001")
    state = MeterState()
    s = _lls_session(m, state)
    value = axdr.enc_octets(b"X" * 300)  # activity calendar passive name
    desc = bytes((0, 20)) + obis_codes.to_bytes("0.0.13.0.0.255") + bytes((6, 0))
    chunks = [value[i : i + 128] for i in range(0, len(value), 128)]
    reply = s.handle(17, bytes((A.SET_REQUEST, 2, 0xC1)) + desc + _datablock(False, 1, chunks[0]))
    assert reply == bytes((A.SET_RESPONSE, 2, 0xC1)) + (1).to_bytes(4, "big")
    reply = s.handle(17, bytes((A.SET_REQUEST, 3, 0xC1)) + _datablock(False, 2, chunks[1]))
    assert reply == bytes((A.SET_RESPONSE, 2, 0xC1)) + (2).to_bytes(4, "big")
    reply = s.handle(17, bytes((A.SET_REQUEST, 3, 0xC1)) + _datablock(True, 3, chunks[2]))
    assert reply == bytes((A.SET_RESPONSE, 3, 0xC1, 0)) + (3).to_bytes(4, "big")
    assert state.calendar[6] == value
    # out of sequence: aborted with data-block-number-invalid; then nothing in progress
    s.handle(17, bytes((A.SET_REQUEST, 2, 0xC2)) + desc + _datablock(False, 1, chunks[0]))
    reply = s.handle(17, bytes((A.SET_REQUEST, 3, 0xC2)) + _datablock(False, 3, chunks[1]))
    assert reply == bytes((A.SET_RESPONSE, 3, 0xC2, 19)) + (3).to_bytes(4, "big")
    reply = s.handle(17, bytes((A.SET_REQUEST, 3, 0xC2)) + _datablock(True, 2, chunks[1]))
    assert reply == bytes((A.SET_RESPONSE, 3, 0xC2, 18)) + (2).to_bytes(4, "big")
    # the conformance block advertises block-transfer-with-set
    assert A.SERVER_CONFORMANCE & A.conformance_value("block_transfer_with_set")


def test_head_end_writes_larger_than_the_pdu():
    """The head-end client splits a calendar bigger than the negotiated PDU into blocks."""
    from collection.protocols.base import DayAction, DayProfile, Season, TouCalendar, WeekProfile
    from collection.protocols.dlms.client import DlmsClient
    from collection.protocols.dlms.settings import DlmsSettings

    async def main(auth: str, interface: str) -> None:
        m = SimulatedMeter(serial="90000001", max_pdu_size=256)
        async with DlmsFleet([m], interface=interface, now=lambda: NOW) as f:
            host, port, sa = f.address_of(m.serial)
            settings = DlmsSettings(
                url=f"tcp://{host}:{port}",
                interface=interface,
                auth=auth,
                server_address=sa,
                physical_address=17 if interface == "hdlc" else None,
                password=m.password if auth == "low" else None,
                auth_key=m.auth_key if auth == "high" else None,
                block_key=m.block_key if auth == "high" else None,
                system_title=CLIENT_TITLE if auth == "high" else None,
                max_pdu=256,
                response_timeout=2.0,
            )
            days = [
                DayProfile(
                    d, tuple(DayAction(time(h), "0.0.10.0.100.255", 1 + h % 2) for h in range(24))
                )
                for d in range(1, 4)
            ]
            cal = TouCalendar(
                name="BIG",
                seasons=(Season("S1", datetime(2025, 1, 1, tzinfo=UTC), "W1"),),
                weeks=(WeekProfile("W1", (1, 1, 1, 1, 1, 2, 3)),),
                days=tuple(days),
            )
            async with DlmsClient(settings) as c:
                await c.write_tou(cal)
            day_table = f.state_of(m.serial).calendar[5]
            assert len(day_table) > 256  # bigger than the negotiated PDU
            assert axdr.decode_typed_all(day_table).as_list()[2].as_list()[0].value == 3

    for auth, interface in (("low", "wrapper"), ("high", "wrapper"), ("high", "hdlc")):
        asyncio.run(main(auth, interface))


# --- 6. closing the fleet with open connections is quiet ----------------------------------


def test_fleet_close_with_open_connections_is_quiet():
    aarq = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400007e1fffff")

    async def main() -> list[dict]:
        problems: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: problems.append(ctx))
        meters = make_meters(3)
        meters[1].fault = Fault("late", delay_s=5)
        meters[2].fault = Fault("timeout")
        writers = []
        async with DlmsFleet(meters, now=lambda: NOW) as f:
            for m in meters:
                host, port, sa = f.address_of(m.serial)
                _r, w = await asyncio.open_connection(host, port)
                w.write(b"\x00\x01\x00\x10" + sa.to_bytes(2, "big") + bytes((0, len(aarq))) + aarq)
                await w.drain()
                writers.append(w)
            # Every meter has taken its AARQ: one answered, the late one sleeps on its reply,
            # the silent one says nothing.
            deadline = asyncio.get_running_loop().time() + 10
            while not all(f.state_of(m.serial).sessions == 1 for m in meters):
                assert asyncio.get_running_loop().time() < deadline, "AARQs not handled"
                await asyncio.sleep(0.01)
            t0 = asyncio.get_running_loop().time()
        closing = asyncio.get_running_loop().time() - t0
        for w in writers:
            w.close()
        for w in writers:
            with contextlib.suppress(ConnectionError):
                await w.wait_closed()
        return problems, closing

    problems, closing = asyncio.run(main())
    assert [p.get("message") for p in problems] == []  # no CancelledError tracebacks
    assert closing < 0.9  # and the late reply is not waited for


def test_ciphered_ic_exception_in_data_phase_unchanged():
    """The data-phase counter check still answers invocation-counter-error (regression)."""
    m = SimulatedMeter(serial="90000001")
    state = MeterState()
    s = _session(m, state)
    s.handle(1, _hls_aarq(m, 10))
    stale = S.protect(S.SC_AUTH_ENC, CLIENT_TITLE, 10, m.block_key, m.auth_key, b"\xc0\x01\x01")
    reply = s.handle(1, S.wrap_glo(A.GLO_GET_REQUEST, stale))
    assert reply == bytes((A.EXCEPTION_RESPONSE, 1, 6)) + (11).to_bytes(4, "big")
