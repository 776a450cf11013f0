"""DLMS client against the simulated fleet (loopback), every capability and mode."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from collection.protocols import base
from collection.protocols.base import MemoryInvocationCounterStore
from collection.protocols.errors import (
    AccessDenied,
    AuthenticationFailed,
    ConnectionFailed,
    FrameError,
    MeterTimeout,
    ProtocolError,
    SecurityError,
)
from meters import obis as obis_codes

from .conftest import NOW, fleet, make_settings, run

pytestmark = pytest.mark.timeout(60)

SERIAL = "90000001"


def _meter(**kw):
    from collection.simulators.dlms_fleet import SimulatedMeter

    return SimulatedMeter(serial=kw.pop("serial", SERIAL), **kw)


def _client(settings, store=None):
    from collection.protocols.dlms.client import DlmsClient

    return DlmsClient(settings, store)


def _expected_registers(serial, t):
    from collection.simulators import model

    out = {}
    for ch, (_p, reg, _u) in model.CHANNELS.items():
        out[reg] = model.energy_register(serial, ch, t)
    for tariff, reg in model.TARIFF_OBIS.items():
        out[reg] = model.tariff_register(serial, tariff, t)
    return out


MODES = [
    (interface, auth, pdu)
    for interface in ("wrapper", "hdlc")
    for auth in ("none", "low", "high")
    for pdu in (128, 1024)
]


@pytest.mark.parametrize("interface,auth,pdu", MODES)
def test_full_read_matches_model(interface, auth, pdu):
    from collection.simulators import model

    async def main():
        meter = _meter()
        async with fleet([meter], interface) as f:
            settings = make_settings(
                meter, f.address_of(SERIAL), interface, auth, max_pdu=pdu, hdlc_max_info=128
            )
            async with _client(settings) as c:
                assert c.capabilities == base.ALL_CAPABILITIES - {
                    base.LIMITER,
                    base.PUSH_SETUP,
                    base.CLOCK_SETTINGS,
                    base.COMMUNICATION,
                    base.ALARM_FILTERS,
                }
                clock = await c.read_clock()
                assert clock.meter_time == NOW
                regs = await c.read_registers(
                    [
                        "1-0:1.8.0*255",
                        "1-0:2.8.0*255",
                        "1-0:3.8.0*255",
                        "1-0:4.8.0*255",
                        "1-0:1.8.1*255",
                        "1-0:1.8.2*255",
                        "1-0:1.6.0*255",
                    ]
                )
                expected = _expected_registers(SERIAL, NOW)
                for r in regs[:6]:
                    dotted = r.obis.replace("-", ".").replace(":", ".").replace("*", ".")
                    assert r.value == Decimal(expected[dotted]), r
                    assert r.unit in ("Wh", "varh")
                md_w, md_at = model.max_demand(SERIAL, NOW)
                assert regs[6].value == Decimal(md_w)
                assert regs[6].capture_time == md_at
                assert regs[6].unit == "W"
                assert regs[0].value == regs[4].value + regs[5].value

                start, end = NOW - timedelta(days=1), NOW
                block = await c.read_load_profile("1-0:99.1.0*255", start, end)
                want = model.profile_entries(SERIAL, start, end)
                assert len(block.rows) == len(want) == 96
                assert block.period_seconds == 900
                assert [ch.obis for ch in block.channels] == [
                    "1-0:1.29.0*255",
                    "1-0:2.29.0*255",
                    "1-0:3.29.0*255",
                    "1-0:4.29.0*255",
                ]
                for row, w in zip(block.rows, want, strict=True):
                    assert row.timestamp == w[0]
                    assert row.values == tuple(Decimal(v) for v in w[1:])

                events = await c.read_events("0-0:99.98.0*255", NOW - timedelta(days=30), NOW)
                want_ev = model.events(SERIAL, NOW - timedelta(days=30), NOW)
                assert [(e.timestamp, e.code) for e in events] == want_ev
                assert all(e.log == "0-0:99.98.0*255" for e in events)

                inst = await c.read_instantaneous()

                def raw(obis):
                    scaler = model.INSTANTANEOUS[obis][0]
                    return Decimal(model.instantaneous(SERIAL, obis, NOW)).scaleb(scaler)

                assert inst.voltages == tuple(
                    raw(o) for o in ("1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255")
                )
                assert inst.currents == tuple(
                    raw(o) for o in ("1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255")
                )
                assert inst.angles == tuple(
                    raw(o) for o in ("1.0.81.7.4.255", "1.0.81.7.15.255", "1.0.81.7.26.255")
                )
                assert inst.frequency == raw("1.0.14.7.0.255")
                assert inst.active_power == raw("1.0.1.7.0.255")

                state = await c.relay_state()
                assert state == base.RelayState(True, "connected")

    run(main())


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
@pytest.mark.parametrize("auth", ["low", "high"])
def test_relay_and_clock_writes(interface, auth):
    async def main():
        meter = _meter()
        async with fleet([meter], interface) as f:
            settings = make_settings(meter, f.address_of(SERIAL), interface, auth)
            async with _client(settings) as c:
                assert await c.disconnect() == base.RelayState(False, "disconnected")
                assert await c.connect() == base.RelayState(True, "connected")
                target = NOW + timedelta(hours=1, seconds=3)
                reading = await c.set_clock(target)
                assert reading.meter_time == target

    run(main())


def test_public_client_cannot_disconnect():
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            async with _client(make_settings(meter, f.address_of(SERIAL))) as c:
                with pytest.raises(AccessDenied) as info:
                    await c.disconnect()
                assert not info.value.retryable

    run(main())


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_write_tou(interface):
    """Over HDLC with 64-byte information fields the SET requests are segmented."""
    from datetime import time as dtime

    async def main():
        meter = _meter()
        cal = base.TouCalendar(
            name="TOU2",
            seasons=(base.Season("S1", NOW, "W1"),),
            weeks=(base.WeekProfile("W1", (1, 1, 1, 1, 1, 2, 2)),),
            days=(
                base.DayProfile(
                    1,
                    (
                        base.DayAction(dtime(0, 0), "0-0:10.0.100*255", 2),
                        base.DayAction(dtime(7, 0), "0-0:10.0.100*255", 1),
                    ),
                ),
                base.DayProfile(2, (base.DayAction(dtime(0, 0), "0-0:10.0.100*255", 2),)),
            ),
        )
        async with fleet([meter], interface) as f:
            s = make_settings(meter, f.address_of(SERIAL), interface, "high", hdlc_max_info=64)
            async with _client(s) as c:
                await c.write_tou(cal)
                name = await c.get_value(20, "0.0.13.0.0.255", 2)
                assert name == b"TOU2"
                await c.write_tou(cal, activate_at=NOW + timedelta(days=1))

    run(main())


def test_configure_load_profile():
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            async with _client(make_settings(meter, f.address_of(SERIAL), auth="low")) as c:
                await c.configure_load_profile(900, channels)
                # Read back through the protocol: what the meter now captures, and how often.
                period = await c.get_value(7, "1.0.99.1.0.255", 4)
                captured = await c.get_value(7, "1.0.99.1.0.255", 3)
        return period, [(cls, bytes(ln), attr) for cls, ln, attr, _index in captured]

    channels = ["1-0:1.29.0*255", "1-0:2.29.0*255", "1-0:3.29.0*255", "1-0:4.29.0*255"]
    period, captured = run(main())
    assert period == 900
    assert captured == [(8, obis_codes.to_bytes("0-0:1.0.0*255"), 2)] + [
        (3, obis_codes.to_bytes(channel), 2) for channel in channels
    ]


def test_configure_load_profile_refusal_is_typed():
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            async with _client(make_settings(meter, f.address_of(SERIAL), auth="low")) as c:
                with pytest.raises(ProtocolError) as refused:  # voltage cannot be captured
                    await c.configure_load_profile(900, ["1-0:32.7.0*255"])
        return refused.value

    assert not run(main()).retryable


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_serial_url_socket(interface):
    """The pyserial (thread pool) transport, via socket:// to the simulator."""

    async def main():
        meter = _meter()
        async with fleet([meter], interface) as f:
            host, port, sa = f.address_of(SERIAL)
            settings = make_settings(
                meter, (host, port, sa), interface, "high", url=f"socket://{host}:{port}"
            )
            async with _client(settings) as c:
                assert (await c.read_clock()).meter_time == NOW
                block = await c.read_load_profile("1-0:99.1.0*255", NOW - timedelta(hours=6), NOW)
                assert len(block.rows) == 24

    run(main())


def test_many_meters_one_listener_concurrently():
    from collection.simulators.dlms_fleet import make_meters

    async def main():
        meters = make_meters(20)
        async with fleet(meters, "hdlc") as f:

            async def one(m):
                s = make_settings(m, f.address_of(m.serial), "hdlc", "high")
                async with _client(s) as c:
                    regs = await c.read_registers(["1-0:1.8.0*255"])
                    return m.serial, regs[0].value

            results = await asyncio.gather(*(one(m) for m in meters))
        for serial, value in results:
            assert value == Decimal(_expected_registers(serial, NOW)["1.0.1.8.0.255"])

    run(main())


def test_exchange_log():
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            s = make_settings(meter, f.address_of(SERIAL), exchange_log=True)
            c = _client(s)
            async with c:
                await c.read_clock()
            directions = [e.direction for e in c.exchange_log]
            assert directions[:4] == ["tx", "rx", "tx", "rx"]
            assert c.exchange_log[0].data[:2] == b"\x00\x01"  # WRAPPER version
            assert all(e.at.tzinfo is not None for e in c.exchange_log)

    run(main())


# ----------------------------------------------------------------- security


def test_wrong_password_and_keys():
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            addr = f.address_of(SERIAL)
            with pytest.raises(AuthenticationFailed) as info:
                async with _client(make_settings(meter, addr, auth="low", password=b"wrong")):
                    pass
            assert not info.value.retryable
            with pytest.raises(AuthenticationFailed):
                async with _client(make_settings(meter, addr, auth="high", block_key=bytes(16))):
                    pass
            with pytest.raises(AuthenticationFailed):
                async with _client(make_settings(meter, addr, auth="high", auth_key=bytes(16))):
                    pass

    run(main())


class _TamperProxy:
    """TCP proxy that flips one byte of the Nth reply from the meter."""

    def __init__(self, target, reply_no, offset_from_end=3):
        self.target = target
        self.reply_no = reply_no
        self.offset = offset_from_end
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        up_r, up_w = await asyncio.open_connection(*self.target)
        count = 0

        async def pump_up():
            try:
                while data := await reader.read(4096):
                    up_w.write(data)
                    await up_w.drain()
            finally:
                up_w.close()

        async def pump_down():
            nonlocal count
            try:
                while True:
                    header = await up_r.readexactly(8)
                    body = await up_r.readexactly(int.from_bytes(header[6:8], "big"))
                    count += 1
                    if count == self.reply_no:
                        body = bytearray(body)
                        body[-self.offset] ^= 0x01
                        body = bytes(body)
                    writer.write(header + body)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump_up(), pump_down(), return_exceptions=True)


@pytest.mark.parametrize("reply_no", [1, 2, 3])
def test_tampered_ciphered_reply_rejected(reply_no):
    """1 = AARE (ciphered initiate-response), 2 = HLS reply, 3 = GET response."""

    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            host, port, sa = f.address_of(SERIAL)
            proxy = _TamperProxy((host, port), reply_no)
            pport = await proxy.start()
            s = make_settings(meter, (host, pport, sa), auth="high")
            with pytest.raises(SecurityError):
                async with _client(s) as c:
                    await c.read_clock()
            proxy.server.close()

    run(main())


def test_invocation_counter_recovery_at_association():
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            addr = f.address_of(SERIAL)
            s = make_settings(meter, addr, auth="high")
            ahead = MemoryInvocationCounterStore(initial=1000)
            async with _client(s, ahead) as c:
                await c.read_clock()
            used = f.state_of(SERIAL).client_ic[1]
            assert used >= 1000
            behind = MemoryInvocationCounterStore(initial=1)  # e.g. a restored database
            async with _client(s, behind) as c:
                assert (await c.read_clock()).meter_time == NOW
            assert await behind.get(s.invocation_counter_key) > used

    run(main())


def test_invocation_counter_recovery_in_data_phase():
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            s = make_settings(meter, f.address_of(SERIAL), auth="high", counter_batch=64)
            store_a = MemoryInvocationCounterStore(initial=1)
            a = _client(s, store_a)
            await a.open()
            await a.read_clock()
            # another head-end instance uses the same key with a higher counter
            async with _client(s, MemoryInvocationCounterStore(initial=500)) as b:
                await b.read_clock()
            # a's next counter (< 500) is rejected; a resynchronises and retries once
            assert (await a.read_clock()).meter_time == NOW
            await a.close()

    run(main())


def test_counter_never_repeats_under_one_key():
    async def main():
        meter = _meter()
        store = MemoryInvocationCounterStore(initial=1)
        async with fleet([meter]) as f:
            s = make_settings(meter, f.address_of(SERIAL), auth="high", counter_batch=3)
            for _ in range(3):
                async with _client(s, store) as c:
                    await c.read_registers(["1-0:1.8.0*255"])
        # 3 sessions x (AARQ + HLS gmac + HLS action + 2 GET + ...) all from the store
        assert await store.get(s.invocation_counter_key) > 15

    run(main())


# ----------------------------------------------------------------- faults


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_fault_no_answer(interface):
    from collection.simulators.dlms_fleet import Fault

    async def main():
        meter = _meter(fault=Fault("timeout"))
        async with fleet([meter], interface) as f:
            s = make_settings(meter, f.address_of(SERIAL), interface, response_timeout=0.3)
            t0 = time.monotonic()
            with pytest.raises(MeterTimeout) as info:
                async with _client(s):
                    pass
            assert info.value.retryable
            assert time.monotonic() - t0 < 3

    run(main())


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_fault_late(interface):
    from collection.simulators.dlms_fleet import Fault

    async def main():
        meter = _meter(fault=Fault("late", delay_s=1.0))
        async with fleet([meter], interface) as f:
            s = make_settings(meter, f.address_of(SERIAL), interface, response_timeout=0.3)
            with pytest.raises(MeterTimeout):
                async with _client(s) as c:
                    await c.read_clock()
            # with a patient client the late meter is readable
            s2 = make_settings(meter, f.address_of(SERIAL), interface, response_timeout=3)
            async with _client(s2) as c:
                assert (await c.read_clock()).meter_time == NOW

    run(main())


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
@pytest.mark.parametrize("at_reply", [1, 3])
def test_fault_reset_mid_frame(interface, at_reply):
    from collection.simulators.dlms_fleet import Fault

    async def main():
        meter = _meter(fault=Fault("reset", at_reply=at_reply))
        async with fleet([meter], interface) as f:
            s = make_settings(meter, f.address_of(SERIAL), interface, response_timeout=1)
            with pytest.raises((ConnectionFailed, MeterTimeout)) as info:
                async with _client(s) as c:
                    await c.read_clock()
                    await c.read_registers(["1-0:1.8.0*255"])
            assert info.value.retryable

    run(main())


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
@pytest.mark.parametrize("auth", ["none", "high"])
def test_fault_corrupted_bytes(interface, auth):
    from collection.simulators.dlms_fleet import Fault

    async def main():
        meter = _meter(fault=Fault("corrupt", at_reply=2))
        async with fleet([meter], interface) as f:
            s = make_settings(meter, f.address_of(SERIAL), interface, auth, response_timeout=0.5)
            with pytest.raises(ProtocolError) as info:
                async with _client(s) as c:
                    for _ in range(3):
                        await c.read_registers(["1-0:1.8.0*255"])
            err = info.value
            if auth == "high":
                assert isinstance(err, (SecurityError, FrameError, MeterTimeout))
            else:
                assert isinstance(err, (FrameError, MeterTimeout)), repr(err)

    run(main())


def test_fault_wrong_clock():
    from collection.simulators.dlms_fleet import Fault

    async def main():
        meter = _meter(fault=Fault("clock", drift_s=-600))
        async with fleet([meter], now=None) as f:
            async with _client(make_settings(meter, f.address_of(SERIAL))) as c:
                reading = await c.read_clock()
        assert reading.drift_seconds == pytest.approx(-600, abs=2)

    run(main())


def test_connection_refused_is_typed():
    async def main():
        from collection.protocols.dlms.settings import DlmsSettings

        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionFailed):
            async with _client(DlmsSettings(url=f"tcp://127.0.0.1:{port}")):
                pass

    run(main())


def test_session_dropped_after_transport_error():
    from collection.simulators.dlms_fleet import Fault

    async def main():
        meter = _meter(fault=Fault("reset", at_reply=3))
        async with fleet([meter]) as f:
            c = _client(make_settings(meter, f.address_of(SERIAL), response_timeout=1))
            await c.open()  # replies 1 (AARE) ok
            await c.read_clock()  # reply 2 ok
            with pytest.raises(ConnectionFailed):
                await c.read_clock()  # reply 3 cut mid-frame
            assert not c.associated
            with pytest.raises(ConnectionFailed):
                await c.read_clock()
            await c.close()

    run(main())


@pytest.mark.parametrize("pdu", [128, 1024])
def test_registers_with_list_and_fallbacks(pdu):
    async def main():
        meter = _meter()
        async with fleet([meter]) as f:
            s = make_settings(
                meter,
                f.address_of(SERIAL),
                auth="high",
                max_pdu=pdu,
                exchange_log=True,
                # wrong class on purpose: the client must fall back to class 3
                register_classes={"1-0:2.8.0*255": 4},
            )
            c = _client(s)
            async with c:
                before = len(c.exchange_log)
                regs = await c.read_registers(
                    ["1-0:1.8.0*255", "1-0:1.8.1*255", "1-0:1.8.2*255", "1-0:1.6.0*255"]
                )
                if pdu == 1024:  # one GET-with-list round trip
                    assert len(c.exchange_log) - before == 2
                assert regs[0].value == regs[1].value + regs[2].value
                assert regs[3].capture_time is not None
                more = await c.read_registers(["1-0:2.8.0*255", "1-0:99.99.99*255"])
            expected = _expected_registers(SERIAL, NOW)
            assert more[0].value == Decimal(expected["1.0.2.8.0.255"])
            assert more[0].error is None
            assert more[1].value is None and "object-undefined" in more[1].error

    run(main())
