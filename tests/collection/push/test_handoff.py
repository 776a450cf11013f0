"""The listener's hand-off contract and replay window, over real loopback sockets (no database).

A connection's pushes are handed off before the listener reads further from it or closes
it; a push that cannot be handed off resets the meter's connection; the replay guard takes
a counter once, in any order within its window. The sink here is a gate the test opens: it
stands for the broker's answer, so the order of events can be held still and looked at.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import UTC, datetime

import pytest

from collection.protocols.dlms.framing import wrapper_encode
from collection.push.senders import REPLAY_WINDOW, Directory, Sender, StaticDirectory
from collection.push.server import HealthServer, PushServer
from collection.simulators.dlms_fleet import MeterState, build_push_apdu, make_meters

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
SIM = make_meters(1, first_serial=93900001)[0]


def sender(floor: int = 0) -> Sender:
    return Sender(
        1,
        SIM.serial,
        system_title=SIM.system_title,
        block_key=SIM.block_key,
        auth_key=SIM.auth_key,
        floor_ic=floor,
    )


def push_frame(ic: int, alarm: int = 1) -> bytes:
    state = MeterState(server_ic=ic - 1)
    return wrapper_encode(1, 1, build_push_apdu(SIM, state, NOW, alarm=alarm, ciphered=True))


# --- the replay window ------------------------------------------------------------------------


def test_a_counter_is_taken_once_in_any_order_within_the_window():
    guard, meter = Directory(), sender()
    assert guard.accept_counter(meter, 5)
    assert guard.accept_counter(meter, 7)
    assert guard.accept_counter(meter, 6)  # overtaken by 7 (a balancer's retry): still taken
    assert not guard.accept_counter(meter, 6)  # but once
    assert not guard.accept_counter(meter, 7)
    assert not guard.accept_counter(meter, 5)
    assert guard.accept_counter(meter, 4)  # never seen, within the window
    top = 7 + REPLAY_WINDOW
    assert guard.accept_counter(meter, top)
    assert not guard.accept_counter(meter, 7)  # slid out of the window (and used)
    assert not guard.accept_counter(meter, top - REPLAY_WINDOW)  # out: refused, seen or not
    assert guard.accept_counter(meter, top - REPLAY_WINDOW + 1)  # the oldest inside


def test_everything_at_or_below_the_durable_floor_is_refused():
    """After a restart only the highest counter handled is known: nothing below it is taken."""
    guard, meter = Directory(), sender(floor=100)
    assert not guard.accept_counter(meter, 100)
    assert not guard.accept_counter(meter, 99)
    assert guard.accept_counter(meter, 102)
    assert guard.accept_counter(meter, 101)  # above the floor: a window of its own
    assert not guard.accept_counter(meter, 100)


def test_a_jump_beyond_the_window_forgets_nothing_it_should_keep():
    guard, meter = Directory(), sender()
    assert guard.accept_counter(meter, 1)
    assert guard.accept_counter(meter, 1 + 10 * REPLAY_WINDOW)
    assert not guard.accept_counter(meter, 1 + 10 * REPLAY_WINDOW)
    assert not guard.accept_counter(meter, 1)


# --- hand-off before read and close -----------------------------------------------------------


class GatedSink:
    """Confirms each hand-off when the test opens the gate (``ok`` False: a failed one)."""

    confirms = True

    def __init__(self) -> None:
        self.waiting: list = []
        self.taken: list[int | None] = []

    def __call__(self, sender, events, ic, done=None) -> bool:
        self.taken.append(ic)
        self.waiting.append(done)
        return True

    def release(self, ok: bool = True) -> None:
        done = self.waiting.pop(0)
        threading.Thread(target=done, args=(ok,)).start()  # from another thread, as Celery's


async def _until(condition, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def _serve(scenario):
    async def main():
        sink = GatedSink()
        server = PushServer(StaticDirectory([sender()]), sink, flush_interval=60)
        host, port = await server.start("127.0.0.1", 0)
        try:
            await asyncio.wait_for(scenario(server, sink, host, port), 20)
        finally:
            await server.close()

    asyncio.run(main())


def test_the_meters_connection_stays_open_until_its_push_is_handed_off():
    async def scenario(server, sink, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(push_frame(1))
        await _until(lambda: sink.taken == [1])
        writer.write(push_frame(2))
        writer.write_eof()  # the meter is done sending and waits for the end
        await asyncio.sleep(0.2)
        assert sink.taken == [1], "the second push was read before the first was handed off"
        assert not reader.at_eof(), "closed before the push was handed off"
        sink.release()
        await _until(lambda: sink.taken == [1, 2])
        await asyncio.sleep(0.2)
        assert not reader.at_eof(), "closed before the second push was handed off"
        sink.release()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # a clean close now
        assert server.stats["handed_off"] == 2
        writer.close()

    _serve(scenario)


def test_a_push_that_cannot_be_handed_off_resets_the_meters_connection():
    async def scenario(server, sink, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(push_frame(1))
        writer.write_eof()
        await _until(lambda: sink.waiting)
        sink.release(ok=False)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)
        assert server.stats["rejected_unavailable"] == 1
        assert server.stats["handed_off"] == 0
        writer.close()

    _serve(scenario)


def test_shutdown_says_draining_then_hands_off_what_it_took_before_it_stops():
    async def scenario(server, sink, host, port):
        async def check():
            return {"listener": "draining" if server.draining else "ok"}

        health = HealthServer(check, stats=lambda: dict(server.stats), cache_seconds=0)
        hhost, hport = await health.start("127.0.0.1", 0)

        async def status() -> bytes:
            r, w = await asyncio.open_connection(hhost, hport)
            w.write(b"GET /healthz HTTP/1.0\r\n\r\n")
            answer = await r.read()
            w.close()
            return answer.split(b"\r\n", 1)[0]

        try:
            assert await status() == b"HTTP/1.0 200 OK"
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(push_frame(1))
            await _until(lambda: sink.waiting)
            stopping = asyncio.create_task(server.shutdown(grace=0.3, timeout=10))
            await asyncio.sleep(0.05)
            assert await status() == b"HTTP/1.0 503 Service Unavailable"
            await asyncio.sleep(0.5)  # past the grace: no new connections
            with pytest.raises(OSError):
                socket.create_connection((host, port), timeout=1).close()
            assert not stopping.done(), "stopped with a push not handed off"
            writer.write(push_frame(2))  # a meter still connected sends on: read, taken
            sink.release()
            await _until(lambda: sink.taken == [1, 2])
            sink.release()
            await asyncio.wait_for(stopping, 5)  # then the idle connection is closed
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert server.stats["handed_off"] == 2
            writer.close()
        finally:
            await health.close()

    _serve(scenario)


def test_a_draining_listener_gives_a_meter_its_quiet_moment_after_a_long_hand_off():
    """The moment of quiet before a draining listener closes a connection counts from the end
    of its last hand-off, not from the meter's last bytes: a push sent just after a slow
    hand-off (the meter had been waiting on it) is still read (CI once lost one this way)."""

    async def scenario(server, sink, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(push_frame(1))
        await _until(lambda: sink.waiting)
        stopping = asyncio.create_task(server.shutdown(grace=0, timeout=10))
        await asyncio.sleep(0.8)  # the hand-off takes longer than the quiet moment
        sink.release()
        await asyncio.sleep(0.2)  # the meter's next push, a little after
        writer.write(push_frame(2))
        await _until(lambda: sink.taken == [1, 2])
        sink.release()
        await asyncio.wait_for(stopping, 5)
        assert server.stats["handed_off"] == 2
        writer.close()

    _serve(scenario)
