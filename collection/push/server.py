"""The asyncio push listener: one process, thousands of meter connections (no Django here).

The listener names no protocol: it decodes with the push decoder of the protocol it is
configured for (:func:`collection.protocols.registry.push_decoder`,
:class:`collection.protocols.push.PushDecoder`).

Each connection is an :class:`asyncio.Protocol` (no task per connection, ~2 KB each): bytes
are split into frames by a bounded decoder, parsed and checked synchronously when the
sender is in the directory's cache; a cache miss queues the connection's frames (in order)
behind one lookup task. Accepted events go to a *sink* (Celery in production, a counter in
the benchmark); rejected messages are counted, logged without key material and handed to
the rejection log (rate-limited per reason and peer). With a confirming sink (Celery) a
connection reads no further while one of its pushes is being handed off, and is closed only
once everything it carried is handed off; :meth:`PushServer.shutdown` drains before it stops.

A housekeeping task closes idle connections (``idle_timeout``) and connections holding an
incomplete frame too long (``frame_timeout``), and flushes the rejection log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import resource
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .. import enqueue
from ..protocols.base import MeterEvent
from ..protocols.push import (
    DEFAULT_MAX_FRAME,
    SYSTEM_TITLE,
    AuthenticationFailed,
    MalformedPush,
    Message,
    PushDecoder,
    PushError,
    event_to_json,
)
from ..protocols.registry import push_decoder
from .senders import MISSING, Directory, Sender

log = logging.getLogger("collection.push")

MAX_QUEUED_PER_CONNECTION = 64  # frames waiting for a sender lookup before reading pauses
LOOKUP_RETRIES = (0.1, 0.5)  # seconds before the 2nd and 3rd attempt of a failed lookup
# Seconds between attempts to hand a push to the broker (about 50 s in all): a broker restart
# or failover costs no push. Meanwhile the health check says "failing", so the balancer sends
# meters to another listener, and what this one holds waits in memory.
HANDOFF_RETRIES = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 15.0)


def utcnow() -> datetime:
    return datetime.now(UTC)


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (up to the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------ sinks


class CounterSink:
    """Counts what would be handed to Celery (benchmark; tests of the pure server)."""

    def __init__(self, keep: int = 0) -> None:
        self.pushes = 0
        self.events = 0
        self.kept: deque = deque(maxlen=keep or None) if keep else deque(maxlen=0)

    def __call__(self, sender: Sender, events: list[MeterEvent], ic: int | None) -> bool:
        self.pushes += 1
        self.events += len(events)
        if self.kept.maxlen:
            self.kept.append((sender.meter_id, events, ic))
        return True

    def close(self) -> None:
        pass


class CelerySink:
    """``collection.handle_push``, queued by name (``collection.enqueue``) from one thread.

    Publishing to the broker is blocking I/O, so it never runs on the event loop: the loop
    puts work on a bounded queue (full queue = the message is rejected as "overload") with a
    ``done(ok)`` callback, called from the sink's thread once the push is in the broker (or
    could not be put there after ``retries``). The listener reads no further from a
    connection until its pushes are handed off, and closes it only then (``confirms``).
    """

    confirms = True

    def __init__(self, max_pending: int = 100_000, retries=HANDOFF_RETRIES) -> None:
        self._queue: queue.Queue = queue.Queue(max_pending)
        self.retries = tuple(retries)
        self.sent = 0
        self.failed = 0
        self.failing = False  # the last attempt failed (no success since): not healthy
        self._thread = threading.Thread(target=self._run, name="push-celery-sink", daemon=True)
        self._thread.start()

    def __call__(
        self,
        sender: Sender,
        events: list[MeterEvent],
        ic: int | None,
        done: Callable[[bool], None] | None = None,
    ) -> bool:
        counter = {"ic": ic, "key_id": sender.key_id} if ic is not None else None
        try:
            item = (sender.meter_id, [event_to_json(e) for e in events], counter, time.time(), done)
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _publish(self, meter_id, events, counter, received) -> bool:
        for delay in (*self.retries, None):
            try:
                enqueue.handle_push(meter_id, events, counter=counter, received=received)
                self.failing = False
                return True
            except Exception:
                self.failing = True
                if delay is None:
                    log.exception("push of meter %s could not be handed to Celery", meter_id)
                    return False
                log.warning("hand-off of a push failed, retrying in %.1f s", delay)
                time.sleep(delay)
        return False  # pragma: no cover - the loop returns

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                _close_thread_connections()
                self._queue.task_done()
                return
            meter_id, events, counter, received, done = item
            ok = False
            try:
                ok = self._publish(meter_id, events, counter, received)
            finally:
                self.sent += ok
                self.failed += not ok
                if done is not None:
                    with contextlib.suppress(Exception):  # the loop may be gone (shutdown)
                        done(ok)
                self._queue.task_done()

    def join(self) -> None:
        """Wait until everything queued has been handed over (tests)."""
        self._queue.join()

    def close(self, timeout: float | None = None) -> bool:
        """Hand over everything queued, then stop the thread; False when ``timeout`` (s)
        passed first (what is left is logged: it is lost with the process)."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("push listener stopping with %d pushes not handed off", self.pending - 1)
            return False
        return True


def _close_thread_connections() -> None:
    # Eager Celery (tests) runs the task in this thread: leave no connection open behind.
    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()


# ------------------------------------------------------------------ health


class HealthServer:
    """A side port for the balancer's health check (HAProxy ``option httpchk``): any HTTP
    request gets ``200`` when every check says "ok", else ``503``; the body (JSON) names
    each check's answer and the listener's counters.

    ``check`` is a coroutine function returning ``{name: "ok" | why not}``; its answer is
    kept ``cache_seconds`` so a balancer (or several) asking often costs one check.
    """

    def __init__(self, check, stats: Callable[[], dict] = dict, cache_seconds: float = 0.5):
        self.check = check
        self.stats = stats
        self.cache_seconds = cache_seconds
        self._answer: tuple[float, dict] | None = None
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        return self._server.sockets[0].getsockname()[:2]

    async def answer(self) -> dict:
        now = time.monotonic()
        if self._answer is None or self._answer[0] < now:
            checks = await self.check()
            self._answer = (now + self.cache_seconds, checks)
        return self._answer[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            checks = await self.answer()
            healthy = all(v == "ok" for v in checks.values())
            body = json.dumps(
                {"status": "ok" if healthy else "unhealthy", "checks": checks}
                | {"stats": self.stats()}
            ).encode()
            status = "200 OK" if healthy else "503 Service Unavailable"
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await asyncio.wait_for(writer.drain(), 5)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


# ------------------------------------------------------------------ rejection log


@dataclass
class Rejection:
    """One rejected message (or a run of them from one peer for one reason)."""

    reason: str
    peer: str
    first_at: datetime
    last_at: datetime
    detail: str = ""
    system_title: str = ""  # hex: public, it travels in clear text
    logical_device: str = ""
    meter_id: int | None = None
    organisation_id: int | None = None
    occurrences: int = 1


@dataclass
class RejectionLog:
    """Rate-limited record of rejections: one entry per (reason, peer) per ``window`` seconds.

    The first rejection of a window is logged at WARNING; later ones only count. Entries are
    handed to ``persist`` (a callable taking a list, may be a coroutine function) on flush.
    At most ``max_entries`` distinct entries per window, so a flood cannot grow memory.
    """

    persist: Callable | None = None
    window: float = 60.0
    max_entries: int = 1000
    entries: dict = field(default_factory=dict)
    window_started: float = field(default_factory=time.monotonic)
    overflow: int = 0

    def add(self, rejection: Rejection) -> None:
        key = (rejection.reason, rejection.peer)
        found = self.entries.get(key)
        if found is not None:
            found.occurrences += 1
            found.last_at = rejection.last_at
            return
        if len(self.entries) >= self.max_entries:
            self.overflow += 1
            return
        self.entries[key] = rejection
        log.warning(
            "push rejected (%s) from %s: system title %s, device %s, meter %s: %s",
            rejection.reason,
            rejection.peer,
            rejection.system_title or "-",
            rejection.logical_device or "-",
            rejection.meter_id or "-",
            rejection.detail,
        )

    def take(self, force: bool = False) -> list[Rejection]:
        """Entries of a finished window (or all when ``force``); the window restarts."""
        now = time.monotonic()
        if not force and now - self.window_started < self.window:
            return []
        out = list(self.entries.values())
        if self.overflow:
            log.warning("%d more push rejections not recorded (too many peers)", self.overflow)
        self.entries = {}
        self.overflow = 0
        self.window_started = now
        return out

    async def flush(self, force: bool = False) -> int:
        rows = self.take(force)
        if rows and self.persist is not None:
            try:
                result = self.persist(rows)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("could not record %d push rejections", len(rows))
        return len(rows)


# ------------------------------------------------------------------ the server


@dataclass(slots=True)
class _Pending:
    message: Message
    received_at: datetime


class PushConnection(asyncio.Protocol):
    """One meter's TCP connection.

    While a push of this connection is being handed off (``handing``) or waits for a sender
    lookup (``queue``), reading is paused: what the listener holds in memory is at most one
    read's frames per connection; the rest waits in the socket. The listener closes the
    connection only when nothing of it is left to hand off (``settle``), also after the
    meter's end of stream.
    """

    __slots__ = (
        "server", "transport", "peer", "decoder", "last", "partial_since", "queue", "handing",
        "eof",
    )  # fmt: skip

    def __init__(self, server: PushServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.decoder = server.new_decoder()
        self.last = time.monotonic()
        self.partial_since: float | None = None
        self.queue: deque[_Pending] = deque()
        self.handing = 0
        self.eof = False

    @property
    def busy(self) -> bool:
        return bool(self.handing or self.queue)

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "?"
        self.server.opened(self)

    def connection_lost(self, exc) -> None:
        self.server.conns.discard(self)

    def eof_received(self):
        self.eof = True
        # True keeps the transport open: it is closed once its pushes are handed off.
        return True if self.busy else None

    def data_received(self, data: bytes) -> None:
        now = self.last = time.monotonic()
        server = self.server
        try:
            frames = self.decoder.feed(data)
        except PushError as exc:
            server.reject(self, exc.reason, str(exc))
            server.stats["closed_" + exc.reason] += 1
            if self.busy:  # what came before the bad bytes is still being handed off
                self.eof = True
                self.pause()
            else:
                self.transport.close()
            return
        if self.decoder.pending:
            if self.partial_since is None:
                self.partial_since = now
        else:
            self.partial_since = None
        errors = getattr(self.decoder, "errors", None)
        if errors:
            for exc in errors:
                server.reject(self, exc.reason, str(exc))
        for frame in frames:
            server.on_frame(self, frame)

    def pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()

    def settle(self) -> None:
        """Nothing left to hand off: close after the meter's end, else read on."""
        if self.busy or self.transport is None or self.transport.is_closing():
            return
        if self.eof:
            self.transport.close()
        else:
            # Quiet time counts from here: what the meter sent while reading was paused is
            # still in the socket, and a draining listener must read it before it closes.
            self.last = time.monotonic()
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class PushServer:
    """Listen for pushes; ``await start(host, port)``, ``await close()``."""

    def __init__(
        self,
        directory: Directory,
        sink: Callable[[Sender, list[MeterEvent], int | None], bool],
        *,
        protocol: str | None = None,
        decoder: PushDecoder | None = None,
        interface: str | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        idle_timeout: float = 300.0,
        frame_timeout: float = 30.0,
        max_connections: int = 20_000,
        rejections: RejectionLog | None = None,
        flush_interval: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.push = decoder if decoder is not None else push_decoder(protocol)
        interface = interface or self.push.interfaces[0]
        if interface not in self.push.interfaces:
            raise ValueError(f"interface must be one of {', '.join(self.push.interfaces)}")
        self.directory = directory
        self.sink = sink
        self.interface = interface
        self.max_frame = max_frame
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.max_connections = max_connections
        self.rejections = rejections if rejections is not None else RejectionLog()
        self.flush_interval = flush_interval
        self.clock = clock
        self.stats: Counter = Counter()
        self.conns: set[PushConnection] = set()
        self._server: asyncio.Server | None = None
        self._housekeeping: asyncio.Task | None = None
        self._lookups: set[asyncio.Task] = set()
        self.draining = False  # stopping: the health check says so, then no new connections
        self.handing = 0  # pushes given to the sink and not yet confirmed handed off

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 4060) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: PushConnection(self), host, port, backlog=4096, reuse_address=True
        )
        self._housekeeping = loop.create_task(self._keep_house())
        sock = self._server.sockets[0].getsockname()
        return sock[0], sock[1]

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[:2]

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def shutdown(self, grace: float = 3.0, timeout: float = 30.0) -> None:
        """Stop without losing what meters sent (SIGTERM): say "draining" to the balancer's
        health check for ``grace`` seconds (it stops sending new meters here), stop
        accepting, read on while meters finish (closing connections idle for a moment once
        their pushes are handed off), then :meth:`close`. ``timeout`` bounds the draining."""
        self.draining = True
        await asyncio.sleep(grace)
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            quiet_since = time.monotonic() - 0.5
            for c in list(self.conns):
                if not c.busy and not c.decoder.pending and c.last < quiet_since:
                    self.conns.discard(c)
                    c.close()
            if not self.conns and not self.handing and not self._lookups:
                break
            await asyncio.sleep(0.05)
        else:
            log.warning(
                "push listener stopping with %d connections, %d hand-offs still open",
                len(self.conns), self.handing,
            )  # fmt: skip
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for c in list(self.conns):
            if c.transport is not None:
                c.transport.abort()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for t in list(self._lookups):
            t.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        await self.rejections.flush(force=True)

    def new_decoder(self):
        return self.push.stream(self.interface, self.max_frame)

    def opened(self, conn: PushConnection) -> None:
        if len(self.conns) >= self.max_connections:
            self.stats["refused_connections"] += 1
            conn.transport.abort()
            return
        self.conns.add(conn)
        self.stats["connections"] += 1

    async def _keep_house(self) -> None:
        step = max(0.05, min(5.0, self.idle_timeout / 4, self.frame_timeout / 4))
        next_flush = time.monotonic() + self.flush_interval
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            idle_before = now - self.idle_timeout
            partial_before = now - self.frame_timeout
            for c in list(self.conns):
                if c.busy:
                    continue
                if c.last < idle_before:
                    self.stats["closed_idle"] += 1
                    self.conns.discard(c)
                    c.close()
                elif c.partial_since is not None and c.partial_since < partial_before:
                    self.stats["closed_frame_timeout"] += 1
                    self.conns.discard(c)
                    c.close()
            if now >= next_flush:
                next_flush = now + self.flush_interval
                await self.rejections.flush()

    # --- frames ------------------------------------------------------------------------

    def on_frame(self, conn: PushConnection, frame) -> None:
        self.stats["frames"] += 1
        received_at = self.clock()
        try:
            message = self.push.identify(frame)
        except PushError as exc:
            self.reject(conn, exc.reason, str(exc))
            return
        item = _Pending(message, received_at)
        if conn.queue:  # keep a connection's pushes in order behind a pending lookup
            self._enqueue(conn, item)
            return
        sender = self.directory.cached(message.kind, message.ident)
        if sender is MISSING:
            self._enqueue(conn, item)
            task = asyncio.get_running_loop().create_task(self._drain(conn))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)
            return
        self._accept(conn, item, sender)

    def _enqueue(self, conn: PushConnection, item: _Pending) -> None:
        conn.queue.append(item)
        if len(conn.queue) >= MAX_QUEUED_PER_CONNECTION and conn.transport is not None:
            conn.transport.pause_reading()

    async def _drain(self, conn: PushConnection) -> None:
        while conn.queue:
            item = conn.queue[0]
            try:
                sender = await self._lookup(item)
            except Exception:
                log.exception("sender lookup failed; push from %s dropped", conn.peer)
                conn.queue.popleft()
                self.reject(conn, "unavailable", "sender lookup failed", item=item)
                continue
            conn.queue.popleft()
            self._accept(conn, item, sender)
        conn.settle()

    async def _lookup(self, item: _Pending) -> Sender | None:
        for delay in LOOKUP_RETRIES:  # a database hiccup should not cost an alarm
            try:
                return await self.directory.lookup(item.message.kind, item.message.ident)
            except Exception:
                log.warning("sender lookup failed, retrying in %.1f s", delay)
                await asyncio.sleep(delay)
        return await self.directory.lookup(item.message.kind, item.message.ident)

    def _accept(self, conn: PushConnection, item: _Pending, sender: Sender | None) -> None:
        message = item.message
        if sender is None:
            self.reject(conn, "unknown_sender", "no meter with this identity", item=item)
            return
        ic = None
        if message.protected:
            if not sender.has_keys:
                self.reject(conn, "unknown_sender", "meter has no keys", item=item, sender=sender)
                return
            try:
                content = self.push.unlock(message, sender)
            except AuthenticationFailed as exc:
                self.directory.invalidate(message.kind, message.ident)
                self.reject(conn, exc.reason, str(exc), item=item, sender=sender)
                return
            ic = message.counter
            if not self.directory.accept_counter(sender, ic):
                self.reject(
                    conn, "replay", f"counter {ic} already used or below the replay window",
                    item=item, sender=sender,
                )  # fmt: skip
                return
        else:
            if not sender.accepts_plain:
                self.reject(
                    conn, "plain_refused", "plain push from a meter set up for high security",
                    item=item, sender=sender,
                )  # fmt: skip
                return
            content = self.push.unlock(message, sender)
        try:
            events = self.push.events(message, content, item.received_at)
        except PushError as exc:
            self.reject(conn, exc.reason, str(exc), item=item, sender=sender)
            return
        self.stats["accepted"] += 1
        if not events:
            self.stats["accepted_without_events"] += 1
            return
        self._hand_off(conn, item, sender, events, ic)

    def _hand_off(self, conn, item: _Pending, sender: Sender, events, ic: int | None) -> None:
        """Give the events to the sink; with a confirming sink, the connection reads no more
        until they are handed off (and is closed, at the meter's end, only then)."""
        if not getattr(self.sink, "confirms", False):
            if not self.sink(sender, events, ic):
                self.reject(conn, "overload", "hand-off queue full", item=item, sender=sender)
                return
            self.stats["events"] += len(events)
            self.stats["handed_off"] += 1
            return
        loop = asyncio.get_running_loop()

        def done(ok: bool) -> None:  # in the sink's thread
            loop.call_soon_threadsafe(self._handed, conn, item, sender, len(events), ok)

        conn.handing += 1
        self.handing += 1
        conn.pause()
        if not self.sink(sender, events, ic, done=done):
            conn.handing -= 1
            self.handing -= 1
            self.reject(conn, "overload", "hand-off queue full", item=item, sender=sender)
            conn.settle()

    def _handed(self, conn, item: _Pending, sender: Sender, events: int, ok: bool) -> None:
        conn.handing -= 1
        self.handing -= 1
        if ok:
            self.stats["events"] += events
            self.stats["handed_off"] += 1
            conn.settle()
            return
        self.reject(conn, "unavailable", "push could not be handed off", item=item, sender=sender)
        # Reset, not a clean close: a meter that waits for the end of its connection (and
        # does not sit behind a balancer that hides resets) knows to send again.
        if conn.transport is not None and not conn.transport.is_closing():
            sock = conn.transport.get_extra_info("socket")
            if sock is not None:  # linger 0: the close is a reset
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.transport.abort()

    def reject(
        self,
        conn: PushConnection,
        reason: str,
        detail: str,
        *,
        item: _Pending | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.stats["rejected"] += 1
        self.stats["rejected_" + reason] += 1
        title = ldn = ""
        if item is not None:
            if item.message.kind == SYSTEM_TITLE:
                title = item.message.ident.hex()
            else:
                ldn = item.message.ident.decode("ascii", "replace")[:64]
        now = self.clock()
        self.rejections.add(
            Rejection(
                reason=reason,
                peer=conn.peer,
                first_at=now,
                last_at=now,
                detail=detail[:200],
                system_title=title,
                logical_device=ldn,
                meter_id=sender.meter_id if sender else None,
                organisation_id=sender.organisation_id if sender else None,
            )
        )


__all__ = [
    "CelerySink",
    "CounterSink",
    "HealthServer",
    "MalformedPush",
    "PushConnection",
    "PushServer",
    "Rejection",
    "RejectionLog",
    "raise_fd_limit",
]
