"""gurux-dlms's client (bytes built/parsed by GXDLMSClient over a plain socket)."""

from datetime import UTC, datetime

import pytest
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import (
    GXDLMSClock,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)

from collection.simulators import model
from collection.simulators.dlms_fleet import DlmsFleet, make_meters

from .conftest import NOW
from .gurux_helper import GuruxSession

LEVELS = {
    "none": dict(client=16),
    "low": dict(client=17, auth=Authentication.LOW, password=b"12345678"),
    "high": dict(client=1, auth=Authentication.HIGH_GMAC),
}


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
@pytest.mark.parametrize("level", ["none", "low", "high"])
def test_gurux_reads(interface, level):
    meters = make_meters(150)
    fleet = DlmsFleet(meters, now=lambda: NOW, interface=interface)
    with fleet.running_in_thread():
        m = meters[140]  # logical address 141: 4-byte HDLC address
        host, port, sa = fleet.address_of(m.serial)
        kw = dict(LEVELS[level])
        if level == "high":
            kw["keys"] = (b"GRX00001", m.block_key, m.auth_key)
        s = GuruxSession(host, port, server=sa, hdlc=interface == "hdlc", **kw)
        s.open()
        try:
            clock = s.read(GXDLMSClock("0.0.1.0.0.255"), 2)
            assert clock.value.replace(tzinfo=UTC) == NOW.replace(microsecond=0)
            r = GXDLMSRegister("1.0.1.8.0.255")
            s.read(r, 3)
            s.read(r, 2)
            assert r.value == model.energy_register(m.serial, 1, NOW) and r.unit == 30
            pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
            s.read(pg, 3)
            start, end = datetime(2025, 3, 9, tzinfo=UTC), datetime(2025, 3, 10, tzinfo=UTC)
            rows = s.rows_by_range(pg, start, end)
            expected = model.profile_entries(m.serial, start, end)
            assert len(rows) == 97
            assert [list(r[1:]) for r in rows] == [list(e[1:]) for e in expected]
            if level != "none":
                dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
                reply = s.request(s.client.method(dc, 1, 0, 15))  # int8 parameter
                assert reply.error == 0
                assert fleet.state_of(m.serial).control_state == 0
        finally:
            s.close()
