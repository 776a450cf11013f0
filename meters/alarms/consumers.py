"""Live alarms over a websocket: one group per organisation, fed after commit.

An alarm is published to its organisation's group and to every ancestor organisation's
group, so a user of the utility hears every region's alarms. A user's socket joins the
groups of the organisations in their scope (their own and those granted to them), never
another: that is the whole of the websocket's scoping.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading

from channels.layers import get_channel_layer
from django.db import transaction

from accounts.models import Organisation
from accounts.scoping import has_model_perm, scope_paths
from amisite.websocket import JsonConsumer, socket_db

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
                        await layer.group_send(group, {"type": "alarm.batch", "alarms": alarms})
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


class AlarmConsumer(JsonConsumer):
    """`ws/alarms/`: every alarm raised or changed in the user's scope, as it happens."""

    groups_joined: list[str] = []

    async def connect(self):
        groups = await socket_db(_groups_of_user)(self.scope.get("user"))
        if groups is None:
            await self.close(code=4403)
            return
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "groups": len(groups)})

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def alarm_batch(self, event):
        for alarm in event["alarms"]:
            await self.send_json({"type": "alarm", "alarm": alarm})
