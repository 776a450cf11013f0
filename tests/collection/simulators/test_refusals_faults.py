"""The meter refuses bad credentials / replays, and each fault is observable."""

import socket
import time
from datetime import timedelta

import pytest
from dlms_cosem.exceptions import DlmsClientException

from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters

from .conftest import CLOCK, NOW, cosem_client, get_value
from .test_interop_dlms_cosem import _dt

# AARQ: LN context, no authentication, InitiateRequest (conformance 0x007E1F, max PDU 0xFFFF)
AARQ = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400007e1fffff")


def wrapper(dst: int, apdu: bytes, src: int = 16) -> bytes:
    return (
        b"\x00\x01"
        + src.to_bytes(2, "big")
        + dst.to_bytes(2, "big")
        + len(apdu).to_bytes(2, "big")
        + apdu
    )


def recv_frame(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 8:
        chunk = sock.recv(8 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    body = b""
    n = int.from_bytes(head[6:8], "big")
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise ConnectionError("closed mid-frame")
        body += chunk
    return head + body


def test_wrong_password_rejected(fleet, meters):
    client = cosem_client(fleet, meters[0], "low", password=b"wrong!!!")
    client.connect()
    with pytest.raises(DlmsClientException, match="REJECTED_PERMANENT"):
        client.associate()
    client.disconnect()


def test_wrong_keys_rejected(fleet, meters):
    bad = (bytes(16), bytes(16))
    client = cosem_client(fleet, meters[0], "high", keys=bad)
    client.connect()
    with pytest.raises(DlmsClientException):
        client.associate()
    client.disconnect()


def test_replayed_invocation_counter_rejected(fleet, meters):
    m = meters[1]
    client = cosem_client(fleet, m, "high", ic=100)
    with client.session():
        get_value(client, CLOCK, "0.0.1.0.0.255", 2)
    replay = cosem_client(fleet, m, "high", ic=100)
    replay.connect()
    with pytest.raises(DlmsClientException):
        replay.associate()
    replay.disconnect()
    lower = cosem_client(fleet, m, "high", ic=50)
    lower.connect()
    with pytest.raises(DlmsClientException):
        lower.associate()
    lower.disconnect()
    ok = cosem_client(fleet, m, "high", ic=fleet.state_of(m.serial).client_ic[1] + 1)
    with ok.session():
        get_value(ok, CLOCK, "0.0.1.0.0.255", 2)


def _fleet(fault: Fault | None):
    meters = make_meters(2)
    meters[1].fault = fault
    return meters, DlmsFleet(meters, now=lambda: NOW)


def _exchange(fleet, meter, timeout=2.0):
    host, port, sa = fleet.address_of(meter.serial)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(wrapper(sa, AARQ))
        return recv_frame(s)


def test_fault_timeout_and_late():
    meters, fleet = _fleet(Fault("timeout"))
    with fleet.running_in_thread():
        assert _exchange(fleet, meters[0])[8] == 0x61
        with pytest.raises(TimeoutError):
            _exchange(fleet, meters[1], timeout=0.5)
    meters, fleet = _fleet(Fault("late", delay_s=0.6))
    with fleet.running_in_thread():
        t0 = time.monotonic()
        assert _exchange(fleet, meters[1])[8] == 0x61
        assert time.monotonic() - t0 >= 0.6


def test_fault_reset_mid_frame():
    meters, fleet = _fleet(Fault("reset", at_reply=1))
    with fleet.running_in_thread():
        host, port, sa = fleet.address_of(meters[1].serial)
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(wrapper(sa, AARQ))
            with pytest.raises(ConnectionError):
                recv_frame(s)


def test_fault_corrupt_flips_a_byte():
    meters, fleet = _fleet(None)
    with fleet.running_in_thread():
        good = _exchange(fleet, meters[1])
    meters, fleet = _fleet(Fault("corrupt", at_reply=1))
    with fleet.running_in_thread():
        bad = _exchange(fleet, meters[1])
    assert len(bad) == len(good)
    diff = [i for i in range(len(good)) if good[i] != bad[i]]
    assert diff == [len(good) // 2] and bad[diff[0]] == good[diff[0]] ^ 0xFF


def test_fault_clock_drift():
    meters, fleet = _fleet(Fault("clock", drift_s=7200))
    meters[0].clock_drift_s = -30
    with fleet.running_in_thread():
        for m, expected in (
            (meters[0], NOW - timedelta(seconds=30)),
            (meters[1], NOW + timedelta(hours=2)),
        ):
            c = cosem_client(fleet, m, "none")
            with c.session():
                assert _dt(get_value(c, CLOCK, "0.0.1.0.0.255", 2)) == expected.replace(
                    microsecond=0
                )


def test_fault_share_is_deterministic():
    from collection.simulators.dlms_fleet import assign_faults

    a = assign_faults(make_meters(1000), 0.2, ["timeout", "reset"], seed=7)
    b = assign_faults(make_meters(1000), 0.2, ["timeout", "reset"], seed=7)
    kinds = [m.fault.kind if m.fault else None for m in a]
    assert kinds == [m.fault.kind if m.fault else None for m in b]
    share = sum(k is not None for k in kinds) / 1000
    assert 0.15 < share < 0.25 and {"timeout", "reset"} <= set(kinds)
