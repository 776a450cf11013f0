"""The push listener over real loopback sockets, fed by the simulator fleet.

The listener (its own event loop on a thread) looks meters up in the test database and hands
accepted pushes to `collection.handle_push`, run eagerly; the simulated meters push with
`DlmsFleet.push_alarm`, exactly as the demo simulator does with `--push-to`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from collection.protocols import registry as drivers
from collection.protocols.dlms.framing import (
    encode_client_address,
    encode_server_address,
    hdlc_encode,
    wrapper_encode,
)
from collection.protocols.errors import NotSupported
from collection.protocols.push import DEVICE_ADDRESS, LOGICAL_DEVICE
from collection.push.directory import (
    DatabaseDirectory,
    close_connections,
    find_sender,
    persist_rejections,
)
from collection.push.models import PushCounter, PushRejection
from collection.push.senders import StaticDirectory
from collection.push.server import CelerySink, CounterSink, PushServer, RejectionLog
from collection.simulators.dlms_fleet import DlmsFleet, MeterState, build_push_apdu, make_meters
from meters.choices import MeterStatus, Security
from meters.models import Meter
from meters.store import EventRecord

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
ALARM_LOG = "0-0:97.98.0*255"
SIM = make_meters(4)  # 0, 1: high security; 2: no security; 3: not in the registry


def register(world, sim, security=Security.HIGH, **extra) -> Meter:
    fields = {
        "serial": sim.serial,
        "meter_model": world.meter_model,
        "organisation": world.org_a,
        "status": MeterStatus.ACTIVE,
        "host": "127.0.0.1",
        "port": 4059,
        "security": security,
        "auth_key": sim.auth_key.hex(),
        "block_key": sim.block_key.hex(),
        "system_title": sim.system_title.hex().upper(),  # case does not matter
    }
    return Meter.objects.create(**(fields | extra))


@pytest.fixture
def registry(world):
    return [
        register(world, SIM[0]),
        register(world, SIM[1]),
        register(world, SIM[2], security=Security.NONE, system_title=""),
    ]


class Harness:
    """A PushServer and a DlmsFleet on one event loop in a background thread."""

    def __init__(self, meters, now=lambda: NOW, counter_base=0, **server_options) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sink = CelerySink()
        options = {"rejections": RejectionLog(persist=persist_rejections, window=0.0)}
        options |= {"flush_interval": 0.05} | server_options
        directory = DatabaseDirectory()
        self.server = PushServer(directory, self.sink, **options)
        self.run(directory.preload())  # as listen_push does at start
        self.host, self.port = self.run(self.server.start("127.0.0.1", 0))
        self.fleet = DlmsFleet(
            meters, now=now, push_to=f"{self.host}:{self.port}", counter_base=counter_base
        )
        self.run(self.fleet.start())

    def run(self, coro, timeout=20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def push(self, serial, alarm=1, ciphered=True) -> bytes:
        return self.run(self.fleet.push_alarm(serial, alarm=alarm, ciphered=ciphered))

    def send(self, data: bytes, wait_closed=False) -> bool:
        """Raw bytes on a new connection; True when the listener closed it."""
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(data)
            if not wait_closed:
                return False
            try:
                return sock.recv(1) == b""
            except ConnectionResetError:
                return True

    def settle(self, frames: int, timeout=10.0) -> None:
        """Wait until the listener has seen `frames` frames and Celery got all hand-offs."""
        wait_for(lambda: self.server.stats["frames"] >= frames, timeout)
        # A barrier on the server's loop: the callback that counted the last frame has
        # returned, so a lookup it started is in _lookups now.
        self.run(asyncio.sleep(0))
        wait_for(lambda: not self.server._lookups, timeout)
        self.sink.join()

    def close(self) -> None:
        self.run(self.fleet.close())
        self.run(self.server.close())
        self.run(close_connections())
        self.sink.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def wait_for(condition, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def listener(transactional_db, registry, eager_celery):
    harness = Harness(SIM)
    yield harness
    harness.close()


def events(meter):
    return sorted(EventRecord.objects.filter(meter=meter).values_list("log", "code", "ts"))


def rejected(reason):
    return PushRejection.objects.filter(reason=reason)


# --- accepted --------------------------------------------------------------------------------


def test_ciphered_push_is_stored_as_events(listener, registry):
    listener.push(SIM[0].serial, alarm=0b101)
    listener.push(SIM[1].serial, alarm=1 << 8)
    listener.settle(2)
    assert events(registry[0]) == [(ALARM_LOG, 0, NOW), (ALARM_LOG, 2, NOW)]
    assert events(registry[1]) == [(ALARM_LOG, 8, NOW)]
    record = EventRecord.objects.get(meter=registry[1])
    assert record.data == [256]
    counter = PushCounter.objects.get(meter=registry[0])
    assert counter.last_ic == listener.fleet.state_of(SIM[0].serial).server_ic == 1
    assert listener.server.stats["accepted"] == 2 and not listener.server.stats["rejected"]


def test_plain_push_is_identified_by_its_logical_device_name(listener, registry):
    listener.push(SIM[2].serial, alarm=2, ciphered=False)
    listener.settle(1)
    assert events(registry[2]) == [(ALARM_LOG, 1, NOW)]


def test_hdlc_ui_frame(transactional_db, registry, eager_celery):
    harness = Harness(SIM, interface="hdlc")
    try:
        apdu = build_push_apdu(SIM[0], MeterState(), NOW, alarm=1 << 4, ciphered=True)
        frame = hdlc_encode(
            encode_client_address(16), encode_server_address(1, 17), 0x13, b"\xe6\xe7\x00" + apdu
        )
        harness.send(frame)
        harness.settle(1)
        assert events(registry[0]) == [(ALARM_LOG, 4, NOW)]
    finally:
        harness.close()


# --- rejected --------------------------------------------------------------------------------


def test_tampered_push_is_rejected_logged_and_not_stored(listener, registry, caplog):
    caplog.set_level(logging.WARNING, logger="collection.push")
    for where in (-1, -14):  # last tag byte, last ciphertext byte
        frame = bytearray(
            wrapper_encode(1, 1, build_push_apdu(SIM[0], MeterState(), NOW, alarm=1, ciphered=True))
        )
        frame[where] ^= 0x40
        listener.send(bytes(frame))
    listener.settle(2)
    assert listener.server.stats["rejected_bad_tag"] == 2
    wait_for(lambda: rejected("bad_tag").exists())
    row = rejected("bad_tag").get()
    assert (row.meter_id, row.organisation_id, row.peer) == (
        registry[0].pk,
        registry[0].organisation_id,
        "127.0.0.1",
    )
    assert row.system_title == SIM[0].system_title.hex()
    assert not EventRecord.objects.exists()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "push rejected (bad_tag)" in logged
    for secret in (SIM[0].block_key.hex(), SIM[0].auth_key.hex()):
        assert secret.lower() not in logged.lower()


def test_unknown_sender_is_rejected(listener):
    listener.push(SIM[3].serial, alarm=1)  # ciphered, title not registered
    listener.push(SIM[3].serial, alarm=1, ciphered=False)  # LDN not registered
    listener.settle(2)
    assert listener.server.stats["rejected_unknown_sender"] == 2
    wait_for(lambda: rejected("unknown_sender").exists())
    row = rejected("unknown_sender").get()  # rate-limited: one row per reason and peer
    assert row.occurrences == 2 and row.meter_id is None
    assert not EventRecord.objects.exists()


def test_plain_push_from_a_high_security_meter_is_refused(listener):
    listener.push(SIM[0].serial, alarm=1, ciphered=False)
    listener.settle(1)
    assert listener.server.stats["rejected_plain_refused"] == 1
    assert not EventRecord.objects.exists()


def test_replayed_counter_is_rejected(listener, registry):
    frame = listener.push(SIM[0].serial, alarm=1)
    listener.settle(1)
    listener.send(frame)  # the same bytes again
    older = MeterState()  # a valid push with a lower counter than the last accepted
    listener.push(SIM[0].serial, alarm=2)
    listener.send(wrapper_encode(1, 1, build_push_apdu(SIM[0], older, NOW, alarm=4, ciphered=True)))
    listener.settle(4)
    assert listener.server.stats["rejected_replay"] == 2
    assert events(registry[0]) == [(ALARM_LOG, 0, NOW), (ALARM_LOG, 1, NOW)]
    wait_for(lambda: rejected("replay").exists())


def test_replay_floor_survives_a_listener_restart(transactional_db, registry, eager_celery):
    frame = None
    harness = Harness(SIM)
    try:
        frame = harness.push(SIM[0].serial, alarm=1)
        harness.settle(1)
    finally:
        harness.close()
    EventRecord.objects.all().delete()
    harness = Harness(SIM)  # a fresh process: nothing in memory
    try:
        harness.send(frame)
        harness.settle(1)
        assert harness.server.stats["rejected_replay"] == 1
        assert not EventRecord.objects.exists()
    finally:
        harness.close()


def test_a_restarted_simulator_counting_from_the_clock_is_not_taken_for_a_replay(
    transactional_db, registry, eager_celery
):
    """`make run` again on the same database: the simulator starts anew while the replay guard
    remembers each meter's last counter. Counting from 1 again, its pushes are replays (as a
    real meter's would be had it lost its counter); counting from the clock
    (`simulate_meters --counters-from-clock`, the Procfile's), they are accepted."""
    started = int(time.time())
    for counter_base, accepted in ((started, 1), (0, 0), (started + 60, 1)):
        harness = Harness(SIM, counter_base=counter_base)
        try:
            harness.push(SIM[0].serial, alarm=1 << counter_base % 7)
            harness.settle(1)
            assert harness.server.stats["accepted"] == accepted, counter_base
        finally:
            harness.close()
    assert PushCounter.objects.get(meter=registry[0]).last_ic == started + 61


def test_garbage_and_oversized_frames_close_the_connection_only(listener, registry):
    assert listener.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", wait_closed=True)
    assert listener.send(b"\x00\x01\x00\x01\x00\x01\xff\xff" + b"\x0f" * 100, wait_closed=True)
    listener.send(wrapper_encode(1, 1, b"\xc0\x01\xc1"))  # not a push: dropped, kept open
    listener.send(wrapper_encode(1, 1, b"\xdb\x08" + b"x" * 20))  # malformed envelope
    listener.settle(2)
    stats = listener.server.stats
    assert stats["closed_framing"] == 1 and stats["closed_oversize"] == 1
    assert stats["rejected_unsupported"] == 1 and stats["rejected_malformed"] == 1
    listener.push(SIM[0].serial, alarm=1)  # still serving
    listener.settle(3)
    assert events(registry[0]) == [(ALARM_LOG, 0, NOW)]


def test_idle_and_half_sent_connections_are_closed(transactional_db, registry, eager_celery):
    harness = Harness(SIM, idle_timeout=1.5, frame_timeout=0.3)
    try:
        with socket.create_connection((harness.host, harness.port), timeout=5) as idle:
            assert idle.recv(1) == b""
        with socket.create_connection((harness.host, harness.port), timeout=5) as half:
            half.sendall(wrapper_encode(1, 1, b"\x0f" * 40)[:20])
            assert half.recv(1) == b""
        stats = harness.server.stats
        assert stats["closed_idle"] == 1 and stats["closed_frame_timeout"] == 1
    finally:
        harness.close()


def test_many_concurrent_connections(transactional_db, world, eager_celery):
    sims = make_meters(150, first_serial=91000001)
    Meter.objects.bulk_create(
        [
            Meter(
                serial=s.serial,
                meter_model=world.meter_model,
                organisation=world.org_a,
                security=Security.HIGH,
                auth_key=s.auth_key.hex(),
                block_key=s.block_key.hex(),
                system_title=s.system_title.hex(),
            )
            for s in sims
        ]
    )
    harness = Harness(sims)
    try:

        async def scenario():
            # 1,000 meters that keep a connection open and say nothing...
            idle = [await asyncio.open_connection(harness.host, harness.port) for _ in range(1000)]
            deadline = asyncio.get_running_loop().time() + 20
            while len(harness.server.conns) < 1000:  # the server has accepted them all
                assert asyncio.get_running_loop().time() < deadline, len(harness.server.conns)
                await asyncio.sleep(0.01)
            # ...while 150 others push at once, each on its own connection.
            await asyncio.gather(
                *(harness.fleet.push_alarm(s.serial, alarm=1 << 5, ciphered=True) for s in sims)
            )
            open_now = len(harness.server.conns)
            for _reader, writer in idle:
                writer.close()
            return open_now

        assert harness.run(scenario(), timeout=60) >= 1000
        harness.settle(150, timeout=60)
        assert harness.server.stats["accepted"] == 150
        assert EventRecord.objects.filter(log=ALARM_LOG, code=5).count() == 150
    finally:
        harness.close()


def test_listener_decodes_the_configured_protocol_through_the_registry():
    server = PushServer(StaticDirectory(), CounterSink())
    assert server.push is drivers.push_decoder(drivers.DEFAULT_PUSH_PROTOCOL)
    assert server.interface == server.push.interfaces[0]
    for interface in server.push.interfaces:
        assert PushServer(StaticDirectory(), CounterSink(), interface=interface).new_decoder()
    with pytest.raises(ValueError):
        PushServer(StaticDirectory(), CounterSink(), interface="no-such-framing")
    without = [name for name, d in drivers.DRIVERS.items() if d.push is None]
    with pytest.raises(NotSupported):
        PushServer(StaticDirectory(), CounterSink(), protocol=without[0])


def test_listen_push_refuses_a_protocol_or_framing_it_cannot_decode():
    without = [name for name, d in drivers.DRIVERS.items() if d.push is None]
    with pytest.raises(CommandError):
        call_command("listen_push", "--protocol", without[0])
    with pytest.raises(CommandError):
        call_command("listen_push", "--interface", "no-such-framing")


def test_an_identity_kind_the_registry_does_not_hold_finds_no_meter(registry):
    meter = SIM[2]
    assert find_sender(LOGICAL_DEVICE, meter.serial.encode()) is not None
    assert find_sender(DEVICE_ADDRESS, meter.serial.encode()) is None
