"""Clock setting, disconnect control, activity calendar, event log, push, access rules."""

import asyncio
import socket
import threading
from datetime import UTC, datetime, timedelta
from enum import IntEnum

import pytest
from dlms_cosem import cosem, dlms_data
from dlms_cosem import enumerations as E
from dlms_cosem.client import ActionError
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor

from collection.protocols.dlms import axdr
from collection.protocols.dlms import security as S
from collection.simulators import model
from collection.simulators.dlms.meter import MeterState
from collection.simulators.dlms_fleet import DlmsFleet, build_push_apdu, make_meters, push_alarm
from meters import obis as obis_codes

from .conftest import CLOCK, DATA, NOW, PROFILE, REGISTER, attr, cosem_client, get_value
from .test_interop_dlms_cosem import _dt


class _Extra(IntEnum):
    PUSH_SETUP = 40  # not in dlms-cosem's CosemInterface


DC = E.CosemInterface.DISCONNECT_CONTROL
CAL = E.CosemInterface.ACTIVITY_CALENDAR


def _method(iface, obis, index):
    return cosem.CosemMethod(iface, cosem.Obis(*[int(x) for x in obis.split(".")][:5]), index)


def test_set_clock_changes_offset(fleet, meters):
    m = meters[0]
    c = cosem_client(fleet, m, "low")
    wanted = datetime(2025, 3, 10, 13, 0, 0, tzinfo=UTC)
    with c.session():
        resp = c.set(
            attr(CLOCK, "0.0.1.0.0.255", 2),
            dlms_data.OctetStringData(axdr.encode_datetime(wanted)).to_bytes(),
        )
        assert resp.result == E.DataAccessResult.SUCCESS
        assert _dt(get_value(c, CLOCK, "0.0.1.0.0.255", 2)) == wanted
    assert fleet.state_of(m.serial).clock_offset_s == (wanted - NOW).total_seconds()


def test_public_client_cannot_write_or_act(fleet, meters):
    c = cosem_client(fleet, meters[0], "none")
    with c.session():
        resp = c.set(
            attr(CLOCK, "0.0.1.0.0.255", 2), dlms_data.OctetStringData(bytes(12)).to_bytes()
        )
        assert resp.result == E.DataAccessResult.READ_WRITE_DENIED
        with pytest.raises(ActionError):
            c.action(_method(DC, "0.0.96.3.10.255", 1), dlms_data.IntegerData(0).to_bytes())


@pytest.mark.parametrize("level", ["low", "high"])
def test_disconnect_reconnect_persists(fleet, meters, level):
    m = meters[1]
    c = cosem_client(fleet, m, level)
    with c.session():
        c.action(_method(DC, "0.0.96.3.10.255", 1), dlms_data.IntegerData(0).to_bytes())
    c = cosem_client(fleet, m, "none")
    with c.session():
        assert get_value(c, DC, "0.0.96.3.10.255", 2) is False
        assert get_value(c, DC, "0.0.96.3.10.255", 3) == 0
    c = cosem_client(fleet, m, level, ic=1000)
    with c.session():
        c.action(_method(DC, "0.0.96.3.10.255", 2), dlms_data.IntegerData(0).to_bytes())
        assert get_value(c, DC, "0.0.96.3.10.255", 2) is True


def test_activity_calendar_passive_write_and_activate(fleet, meters):
    c = cosem_client(fleet, meters[2], "low")
    with c.session():
        assert get_value(c, CAL, "0.0.13.0.0.255", 2) == bytearray(b"SIM-TOU1")
        assert len(get_value(c, CAL, "0.0.13.0.0.255", 5)) == 1
        resp = c.set(attr(CAL, "0.0.13.0.0.255", 6), dlms_data.OctetStringData(b"NEW").to_bytes())
        assert resp.result == E.DataAccessResult.SUCCESS
        c.action(_method(CAL, "0.0.13.0.0.255", 1), dlms_data.IntegerData(0).to_bytes())
        assert get_value(c, CAL, "0.0.13.0.0.255", 2) == bytearray(b"NEW")


def test_profile_attributes_and_event_log(fleet, meters):
    m = meters[3]
    c = cosem_client(fleet, m, "none")
    with c.session():
        assert get_value(c, PROFILE, "1.0.99.1.0.255", 4) == 900
        cols = get_value(c, PROFILE, "1.0.99.1.0.255", 3)
        assert [bytes(col[1]) for col in cols][1] == bytes([1, 0, 1, 29, 0, 255])
        assert get_value(c, PROFILE, "1.0.99.1.0.255", 7) == 960  # full (capped) buffer
        assert get_value(c, PROFILE, "1.0.99.1.0.255", 8) == 960  # 10 days x 96
        start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
        rd = RangeDescriptor(
            restricting_object=CaptureObject(attr(CLOCK, "0.0.1.0.0.255", 2)),
            from_value=start,
            to_value=end,
        )
        rows = get_value(c, PROFILE, "0.0.99.98.0.255", 2, rd)
        expected = model.events(m.serial, start, end)
        assert [(_dt(r[0]), r[1]) for r in rows] == expected and expected
        w = get_value(c, E.CosemInterface.EXTENDED_REGISTER, "1.0.1.6.0.255", 2)
        assert w == model.max_demand(m.serial, NOW)[0]
        assert get_value(c, REGISTER, "1.0.1.8.1.255", 2) == model.tariff_register(m.serial, 1, NOW)
        assert get_value(c, REGISTER, "1.0.81.7.4.255", 2) == model.instantaneous(
            m.serial, "1.0.81.7.4.255", NOW
        )
        assert get_value(c, DATA, "0.0.42.0.0.255", 2) == bytearray(b"SIM" + m.serial.encode())


def test_entry_descriptor(fleet, meters):
    from collection.protocols.dlms import apdu as xdlms
    from collection.simulators.dlms.objects import OBJECTS, Ctx

    m = meters[0]
    lp = OBJECTS[obis_codes.to_bytes("1.0.99.1.0.255")]
    sel = axdr.decode_typed_all(
        axdr.enc_struct(
            axdr.enc_uint32(2), axdr.enc_uint32(3), axdr.enc_uint16(2), axdr.enc_uint16(2)
        )
    )
    data = lp.get(Ctx(m, MeterState(), NOW), 2, 2, sel)
    v = axdr.decode_typed_all(data).as_list()
    oldest = model.completed_intervals(NOW) - m.profile_entries  # entry 1 = oldest kept
    assert [[x.value for x in row.as_list()] for row in v] == [
        [model.interval_value(m.serial, 1, oldest + 1)],
        [model.interval_value(m.serial, 1, oldest + 2)],
    ]
    assert xdlms.DAR_SUCCESS == 0


class _Sink:
    """A TCP listener collecting what is pushed to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(5)
        self.data: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self):
        for _ in range(4):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while chunk := conn.recv(4096):
                    buf += chunk
                self.data.append(buf)


def _decode_push(m, frame: bytes) -> axdr.Value:
    apdu = frame[8:]
    if apdu[0] == 0xDB:
        c = S.split_ciphered(apdu)
        assert c.system_title == m.system_title
        _, _, apdu = S.unprotect(m.system_title, m.block_key, m.auth_key, c.content)
    assert apdu[0] == 0x0F and apdu[5] == 0x0C
    return axdr.decode_typed_all(apdu[18:])


def test_push_plain_ciphered_and_via_push_setup():
    import time

    meters = make_meters(2)
    sink = _Sink()
    fleet = DlmsFleet(meters, now=lambda: NOW)
    with fleet.running_in_thread():
        m = meters[1]
        host, port = sink.address.split(":")
        asyncio.run(push_alarm(m, host, int(port), alarm=0x81))
        c = cosem_client(fleet, m, "high")
        with c.session():
            value = axdr.enc_struct(
                axdr.enc_enum(0), axdr.enc_octets(sink.address.encode()), axdr.enc_enum(0)
            )
            resp = c.set(attr(_Extra.PUSH_SETUP, "0.0.25.9.0.255", 3), value)
            assert resp.result == E.DataAccessResult.SUCCESS
            c.action(_method(_Extra.PUSH_SETUP, "0.0.25.9.0.255", 1), b"\x0f\x00")
        for _ in range(50):
            if len(sink.data) >= 2:
                break
            time.sleep(0.05)
    assert len(sink.data) == 2
    plain, ciphered = sink.data
    assert plain[8] == 0x0F and ciphered[8] == 0xDB
    body = _decode_push(m, plain).as_list()
    assert body[0].value == b"SIM" + m.serial.encode() and body[1].value == 0x81
    assert _decode_push(m, ciphered).as_list()[1].value == 1  # fleet state: alarm 1


def test_build_push_uses_fresh_counters():
    m = make_meters(1)[0]
    st = MeterState()
    a = build_push_apdu(m, st, NOW, alarm=1, ciphered=True)
    b = build_push_apdu(m, st, NOW + timedelta(seconds=1), alarm=1, ciphered=True)
    ic = [int.from_bytes(S.split_ciphered(x).content[1:5], "big") for x in (a, b)]
    assert ic == [1, 2]
