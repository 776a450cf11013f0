"""Live alarms over a websocket: one group per organisation, fed after commit.

An alarm is published to its organisation's group and to every ancestor organisation's
group, so a user of the utility hears every region's alarms. A user's socket joins the
groups of the organisations in their scope (their own and those granted to them), never
another: that is the whole of the websocket's scoping.

A group's members are the web processes, not the sockets: each event loop has one channel
(`_Hub`) in the groups its sockets joined, and hands each alarm to its own sockets of that
group, encoded once. One channel per socket was one Redis message per socket per alarm: 1,000
alarm sockets on two processes cost 0.18 cores at half an alarm a second, most of it each
socket's own receive (bench/web_load.py).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import threading
import weakref
from collections import deque

from channels.layers import get_channel_layer
from django.db import transaction

from accounts.models import Organisation
from accounts.scoping import has_model_perm, scope_paths
from amisite.channel_layer import raise_if_cancelled
from amisite.websocket import TRY_AGAIN_LATER, JsonConsumer, socket_db

from .models import Alarm

logger = logging.getLogger(__name__)


def organisation_group(organisation_id: int) -> str:
    return f"alarms-org-{organisation_id}"


def groups_for_path(path: str) -> list[str]:
    """The groups an alarm of the organisation at `path` ("/1/4/9/") goes to: it and above."""
    return [organisation_group(int(pk)) for pk in path.strip("/").split("/") if pk]


def alarm_snapshot(alarm) -> dict:
    """What a browser needs to show one alarm (no secrets; ids and labels only)."""
    meter = alarm.meter
    return {
        "id": alarm.pk,
        "kind": alarm.kind,
        "kind_label": alarm.get_kind_display(),
        "last_event": alarm.last_event,
        "severity": alarm.severity,
        "severity_label": alarm.get_severity_display(),
        "state": alarm.state,
        "count": alarm.count,
        "meter": meter.serial if meter is not None else "",
        "meter_id": alarm.meter_id,
        "line": alarm.line_id,
        "subject": alarm.subject,
        "link": alarm.link,
        "organisation": alarm.organisation_id,
        "service_point": alarm.service_point_id,
        "first_event_at": alarm.first_event_at.isoformat(),
        "last_event_at": alarm.last_event_at.isoformat(),
        "rule": alarm.rule_id,
    }


def publish_alarm(alarm) -> None:
    """The one way alarms reach browsers: after the current transaction commits.

    The message is built now (from the row as this transaction leaves it) and sent only if
    the transaction commits, so a rolled-back alarm is never seen.
    """
    snapshot = alarm_snapshot(alarm)
    groups = groups_for_path(alarm.organisation.path)
    transaction.on_commit(lambda: _publisher.submit(groups, snapshot))


class _Publisher:
    """One event loop per process, in its own thread, that hands alarms to the channel layer.

    `async_to_sync` per message would start a loop (and a new Redis connection pool) every
    time, ~10 ms; this loop keeps its connections, and the committing thread does not wait
    for Redis. What queued up while the last send ran goes out as one `alarm.batch` message
    per group (order kept), so a storm of alarms costs a few sends, not one per alarm per
    group, and a slow browser's channel (capacity 100 messages) holds far more alarms.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._pid = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # new, or a forked child
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run():
                    asyncio.set_event_loop(loop)
                    self._queue = asyncio.Queue()
                    loop.create_task(self._worker())
                    ready.set()
                    loop.run_forever()

                threading.Thread(target=run, name="alarm-publisher", daemon=True).start()
                ready.wait(5)
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            by_group: dict[str, list] = {}
            for groups, alarm in items:
                for group in groups:
                    by_group.setdefault(group, []).append(alarm)
            layer = get_channel_layer()
            for group, alarms in by_group.items():
                try:
                    if layer is not None:
                        message = {"type": "alarm.batch", "group": group, "alarms": alarms}
                        await layer.group_send(group, message)
                except Exception:  # noqa: BLE001 - a lost push must not stop the next ones
                    logger.exception("alarm push to %s failed", group)
            for _ in items:
                queue.task_done()

    def submit(self, groups: list[str], alarm: dict) -> None:
        loop = self._ensure_loop()
        loop.call_soon_threadsafe(self._queue.put_nowait, (groups, alarm))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything submitted has been handed to the channel layer."""
        if self._loop is None or self._pid != os.getpid():
            return
        asyncio.run_coroutine_threadsafe(self._queue.join(), self._loop).result(timeout)


_publisher = _Publisher()
flush_published = _publisher.flush
atexit.register(lambda: _publisher.flush(2.0))


def _groups_of_user(user) -> list[str] | None:
    """The groups a user's socket joins (None: may not see alarms at all)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if not has_model_perm(user, Alarm, "view"):
        return None
    paths = scope_paths(user, "view")
    if paths is None:  # superuser: the roots' groups carry every alarm
        roots = Organisation.objects.filter(parent__isnull=True).values_list("pk", flat=True)
        return [organisation_group(pk) for pk in roots]
    return [organisation_group(int(p.strip("/").split("/")[-1])) for p in paths if p.strip("/")]


# A socket whose browser reads slower than alarms come (this many waiting) is closed with
# "try again later": the page reconnects and reloads the list, rather than miss some silently.
OUTBOX_LIMIT = 1000
# channels_redis forgets a group membership after its group expiry (a day): the hub's channel
# joins its groups again this often.
REJOIN_SECONDS = 3600


class _Hub:
    """One event loop's alarm sockets by group, and the one channel that hears those groups.

    A socket joins its groups here; the first socket of a group adds the hub's channel to it,
    the last one to leave takes it out. Each alarm batch that arrives is encoded once and
    queued on every member socket of its group (`AlarmConsumer.deliver`), so a slow browser
    holds up only itself. If the channel layer fails, every member socket is closed with
    "try again later" (the pages reconnect), as a socket's own receive did before.
    """

    def __init__(self, layer):
        self.layer = layer
        self.members: dict[str, set] = {}
        self.channel: str | None = None
        self.tasks: list[asyncio.Task] = []
        self.lock = asyncio.Lock()

    async def join(self, consumer, groups: list[str]) -> None:
        async with self.lock:
            if self.channel is None:
                # The default prefix: channels_redis pops one process queue per prefix, by
                # whichever receiver holds its lock; another prefix would wait behind it.
                self.channel = await self.layer.new_channel()
                self.tasks = [
                    asyncio.ensure_future(self._receive(self.channel)),
                    asyncio.ensure_future(self._rejoin(self.channel)),
                ]
            for group in groups:
                if group not in self.members:
                    await self.layer.group_add(group, self.channel)
                    self.members[group] = set()
                self.members[group].add(consumer)

    async def leave(self, consumer, groups: list[str]) -> None:
        async with self.lock:
            for group in groups:
                members = self.members.get(group)
                if members is None:
                    continue
                members.discard(consumer)
                if not members:
                    del self.members[group]
                    with contextlib.suppress(Exception):  # the layer may be what failed
                        await self.layer.group_discard(group, self.channel)
            if not self.members and self.channel is not None:
                self._stop()

    def _stop(self) -> None:
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.tasks, self.channel = [], None

    async def _receive(self, channel: str) -> None:
        try:
            while True:
                message = await self.layer.receive(channel)
                if message.get("type") != "alarm.batch":
                    continue
                members = self.members.get(message.get("group"))
                if not members:
                    continue
                texts = [json.dumps({"type": "alarm", "alarm": a}) for a in message["alarms"]]
                for consumer in list(members):
                    consumer.deliver(texts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every member hears of it, then reconnects
            logger.warning(
                "alarm sockets closed: channel layer unavailable (%s: %s)", type(exc).__name__, exc
            )
            await self._fail()

    async def _rejoin(self, channel: str) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            raise_if_cancelled()  # a stopped hub must not join its groups again
            try:
                for group in list(self.members):
                    await self.layer.group_add(group, channel)
            except Exception as exc:  # noqa: BLE001
                logger.warning("alarm hub could not rejoin its groups (%s)", exc)
                await self._fail()
                return

    async def _fail(self) -> None:
        async with self.lock:
            consumers = {c for members in self.members.values() for c in members}
            self.members = {}
            self._stop()
        for consumer in consumers:
            with contextlib.suppress(Exception):
                await consumer.close(code=TRY_AGAIN_LATER)


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hub(layer) -> _Hub:
    """This event loop's hub (tests run consumers in loops of their own)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = _Hub(layer)
    return hub


class AlarmConsumer(JsonConsumer):
    """`ws/alarms/`: every alarm raised or changed in the user's scope, as it happens."""

    groups_joined: list[str] = []

    async def connect(self):
        groups = await socket_db(_groups_of_user)(self.scope.get("user"))
        if groups is None:
            await self.close(code=4403)
            return
        self._outbox: deque[str] = deque()
        self._sender: asyncio.Task | None = None
        # False: alarms the hub hands over before the hello wait; None: closing, none more.
        self._open: bool | None = False
        self.groups_joined = groups  # before joining: a failed join is left all the same
        await _hub(self.channel_layer).join(self, groups)
        await self.accept()
        await self.send_json({"type": "hello", "groups": len(groups)})
        self._open = True
        self.deliver([])

    async def disconnect(self, code):
        if self.groups_joined:
            await _hub(self.channel_layer).leave(self, self.groups_joined)
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.cancel()

    def deliver(self, texts: list[str]) -> None:
        """Queue encoded alarms for this socket (from the hub); sent in order, in the
        background."""
        if self._open is None:  # being closed for falling behind
            return
        self._outbox.extend(texts)
        if len(self._outbox) > OUTBOX_LIMIT:
            self._outbox.clear()
            self._open = None
            logger.warning("alarm socket closed: its browser fell %d alarms behind", OUTBOX_LIMIT)
            asyncio.ensure_future(self.close(code=TRY_AGAIN_LATER))
            return
        if self._open and self._outbox and (self._sender is None or self._sender.done()):
            self._sender = asyncio.ensure_future(self._send_outbox())

    async def _send_outbox(self) -> None:
        with contextlib.suppress(Exception):  # the socket closing meanwhile
            while self._outbox:
                await self.send(text_data=self._outbox.popleft())
