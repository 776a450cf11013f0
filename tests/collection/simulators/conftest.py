"""Shared helpers: a fleet running in a thread and dlms-cosem client factories."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import structlog
from dlms_cosem import cosem, utils
from dlms_cosem import enumerations as E
from dlms_cosem.client import DlmsClient
from dlms_cosem.cosem import Obis
from dlms_cosem.hdlc import frames as hdlc_frames
from dlms_cosem.hdlc.state import NEED_DATA
from dlms_cosem.io import BlockingTcpIO, HdlcTransport, TcpTransport
from dlms_cosem.security import (
    HighLevelSecurityGmacAuthentication,
    LowLevelSecurityAuthentication,
    NoSecurityAuthentication,
)

from collection.simulators.dlms_fleet import DlmsFleet, make_meters

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

NOW = datetime(2025, 3, 10, 12, 7, 30, tzinfo=UTC)
CLIENT_TITLE = b"TST00001"


class LengthFramedHdlcTransport(HdlcTransport):
    """dlms-cosem's HDLC transport, reading each frame by its length field.

    DLMS HDLC (IEC 62056-46) has no byte stuffing: a frame's length is in its format
    field, and 0x7E may stand anywhere inside it, its FCS too.  dlms-cosem reads up to
    the next 0x7E and, when that cuts a frame short, waits for more bytes that never
    come (about one frame in 256 has an FCS ending in 0x7E, so the interop tests failed
    now and then with a receive timeout).  Here a frame is read by its length, and a
    buffer holding another flag is searched again before the socket is read.
    """

    def recv_frame(self) -> bytes:
        flag = self.io.recv(1)
        while flag != hdlc_frames.HDLC_FLAG:  # bytes between frames
            flag = self.io.recv(1)
        head = self.io.recv(2)
        while head[:1] == hdlc_frames.HDLC_FLAG:  # consecutive flags
            head = head[1:] + self.io.recv(1)
        length = int.from_bytes(head, "big") & 0x07FF
        return flag + head + self.io.recv(length - 2) + self.io.recv(1)

    def next_event(self):
        conn = self.hdlc_connection
        while True:
            event = conn.next_event()
            if event is not NEED_DATA:
                return event
            if conn.buffer.find(hdlc_frames.HDLC_FLAG, conn.buffer_search_position) < 0:
                conn.receive_data(self.recv_frame())


def cosem_client(fleet, meter, level="none", *, hdlc=False, password=None, keys=None, ic=0):
    host, port, sa = fleet.address_of(meter.serial)
    sap = {"none": 16, "low": 17, "high": 1}[level]
    io = BlockingTcpIO(host, port, timeout=5)
    if hdlc:
        transport = LengthFramedHdlcTransport(
            client_logical_address=sap,
            server_logical_address=sa,
            server_physical_address=17,
            extended_addressing=sa > 127,
            io=io,
        )
    else:
        transport = TcpTransport(client_logical_address=sap, server_logical_address=sa, io=io)
    kw = {}
    if level == "none":
        auth = NoSecurityAuthentication()
    elif level == "low":
        auth = LowLevelSecurityAuthentication(secret=password or meter.password)
    else:
        auth = HighLevelSecurityGmacAuthentication(challenge_length=32)
        ek, ak = keys or (meter.block_key, meter.auth_key)
        kw = dict(
            encryption_key=ek,
            authentication_key=ak,
            client_system_title=CLIENT_TITLE,
            client_initial_invocation_counter=ic,
        )
    return DlmsClient(transport=transport, authentication=auth, timeout=5, **kw)


def attr(iface, obis: str, index: int) -> cosem.CosemAttribute:
    return cosem.CosemAttribute(iface, Obis(*[int(x) for x in obis.split(".")][:5]), index)


def get_value(client, iface, obis, index, access=None):
    return utils.parse_as_dlms_data(client.get(attr(iface, obis, index), access))


REGISTER = E.CosemInterface.REGISTER
CLOCK = E.CosemInterface.CLOCK
DATA = E.CosemInterface.DATA
PROFILE = E.CosemInterface.PROFILE_GENERIC


@pytest.fixture
def meters():
    return make_meters(5)


@pytest.fixture
def fleet(meters):
    f = DlmsFleet(meters, now=lambda: NOW)
    with f.running_in_thread():
        yield f


@pytest.fixture
def hdlc_fleet(meters):
    f = DlmsFleet(meters, now=lambda: NOW, interface="hdlc")
    with f.running_in_thread():
        yield f


@pytest.fixture
def settings():
    """Stand-in for pytest-django's fixture (suite-wide autouse fixtures ask for it);
    these tests never touch Django and must run with ``-p no:django``."""
    import types

    return types.SimpleNamespace()
