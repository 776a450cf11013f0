"""Websocket consumers of the collection app: live system status for signed-in staff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from accounts.models import User
from amisite.display import when
from amisite.websocket import JsonConsumer, socket_db, status_db
from meters.alarms.engine import outage_summary
from meters.alarms.models import OPEN_STATES, Alarm, Severity
from meters.choices import MeterStatus
from meters.filters import Health, health_expression
from meters.models import Meter
from meters.rollup_cache import cached_per_scope

from .choices import RunStatus
from .health import system_status
from .models import JobRun
from .progress import run_group, run_snapshot

STATUS_GROUP = "system-status"
logger = logging.getLogger(__name__)


REFRESH_SECONDS = 20  # the home's figures refresh this often even when nothing is published
NUDGE_DELAY_SECONDS = 0.5  # events within this delay share one recomputation


class SystemStatusConsumer(JsonConsumer):
    """The home's fleet snapshot for the signed-in user, kept fresh.

    On connect: the user's scoped snapshot. On every event published to the status group:
    the published payload as is (global facts such as workers), then a recomputed scoped
    snapshot (debounced, so a burst of events costs one), and every REFRESH_SECONDS anyway.
    Published payloads must therefore never carry organisation data; the scoped figures
    are always computed here, per user (`_Refresher`: once for all of a user's sockets in
    this process).
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user_id = user.pk
        await self.channel_layer.group_add(STATUS_GROUP, self.channel_name)
        await self.accept()
        _refresher().add(self)

    async def disconnect(self, code):
        await self.channel_layer.group_discard(STATUS_GROUP, self.channel_name)
        if hasattr(self, "user_id"):
            _refresher().remove(self)

    async def status_update(self, event):
        await self.send_json({"type": "status", "status": event["status"]})
        _refresher().nudge(self.user_id, NUDGE_DELAY_SECONDS)

    async def status_refresh(self, event):
        _refresher().nudge(self.user_id, NUDGE_DELAY_SECONDS)

    async def deliver(self, status: dict | None):
        if status is None:  # deactivated or deleted meanwhile
            await self.close(code=4403)
            return
        await self.send_json({"type": "status", "status": status})


class _Refresher:
    """One event loop's status sockets by user; each user's snapshot is computed once for
    all of their sockets: when one connects, after events, every REFRESH_SECONDS.

    Per socket, 2,000 open home pages were 100 snapshots a second (each a fresh user, its
    permissions and scope: ~8 queries) from the ticks alone, and every published event
    was one recomputation per socket.
    """

    def __init__(self):
        self.sockets: dict[int, set] = {}
        self.waiting: dict[int, asyncio.Task] = {}
        self.ticker: asyncio.Task | None = None

    def add(self, consumer) -> None:
        self.sockets.setdefault(consumer.user_id, set()).add(consumer)
        if self.ticker is None or self.ticker.done():
            self.ticker = asyncio.ensure_future(self._tick())
        self.nudge(consumer.user_id, 0)

    def remove(self, consumer) -> None:
        mine = self.sockets.get(consumer.user_id, set())
        mine.discard(consumer)
        if not mine:
            self.sockets.pop(consumer.user_id, None)
        if not self.sockets and self.ticker is not None:
            self.ticker.cancel()
            self.ticker = None

    def nudge(self, user_id: int, delay: float) -> None:
        """Recompute the user's snapshot after `delay` s; nudges meanwhile share it."""
        if user_id not in self.waiting:
            self.waiting[user_id] = asyncio.ensure_future(self._refresh(user_id, delay))

    async def _refresh(self, user_id: int, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            self.waiting.pop(user_id, None)  # a nudge from now on needs a computation after this
        try:
            status = await status_db(_snapshot_for)(user_id)
        except Exception:  # noqa: BLE001 - the next tick tries again
            logger.exception("status snapshot of user %s failed", user_id)
            return
        for consumer in list(self.sockets.get(user_id, ())):
            with contextlib.suppress(Exception):  # a socket closing meanwhile
                await consumer.deliver(status)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            for user_id in list(self.sockets):
                self.nudge(user_id, 0)


_refreshers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _refresher() -> _Refresher:
    loop = asyncio.get_running_loop()
    if loop not in _refreshers:
        _refreshers[loop] = _Refresher()
    return _refreshers[loop]


def _snapshot_for(user_id: int) -> dict | None:
    # A fresh user each time: roles and grants changed since connecting apply at once.
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return snapshot(user) if user is not None else None


def snapshot(user=None) -> dict:
    """The operator's home: fleet health at a glance, scoped to what `user` may see.

    Meters by registry status and by health (read OK / stale / unreachable / alarm),
    today's reads, open alarms by severity and meters off in open outages (for users who may
    see alarms), runs in progress. Without a user: only the server facts.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    # Shown as is on the home page (and updated by the websocket): the utility's zone, named.
    status = {"server_time": when(timezone.now(), seconds=True), "database": connection.vendor}
    if user is None:
        return status
    status.update(fleet_snapshot(user))
    return status


# Fleet figures of the home page and the status socket are shared by everyone with the same
# scope for this long: at 100,000 meters one computation is ~1 s of PostgreSQL, and every
# status socket asks every REFRESH_SECONDS and on every publish.
SNAPSHOT_SECONDS = 5


def fleet_snapshot(user) -> dict:
    """`_fleet_snapshot`, computed once per scope every SNAPSHOT_SECONDS."""
    return cached_per_scope(user, "fleet-snapshot", lambda: _fleet_snapshot(user), SNAPSHOT_SECONDS)


def _fleet_snapshot(user) -> dict:
    meters = Meter.objects.restrict(user, "view")
    by_status = dict(meters.order_by().values_list("status").annotate(n=Count("pk")))
    installed = meters.filter(status__in=Health.STATUSES)
    by_health = dict(
        installed.annotate(health=health_expression())
        .order_by()
        .values_list("health")
        .annotate(n=Count("pk"))
    )
    collection = system_status(user, include_workers=False)
    running = (
        JobRun.objects.restrict(user, "view")
        .filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .select_related("job")
        .order_by("-created_at")[:5]
    )
    result = {
        "meters": {
            "total": sum(by_status.values()),
            "by_status": [
                {"status": value, "label": label, "n": by_status.get(value, 0)}
                for value, label in MeterStatus.choices
            ],
            "health": [
                {"health": h, "label": Health.LABELS[h], "n": by_health.get(h, 0)}
                for h in Health.ORDER
            ],
        },
        "today": collection["today"],
        "reads_per_minute": collection["reads_per_minute"],
        "unreachable": collection["unreachable"],
        "not_read_for_days": collection["not_read_for_days"],
        "runs_running": collection["runs_running"],
        "runs": [
            {
                "id": run.pk,
                "name": run.job.name if run.job else run.get_kind_display(),
                "status": run.status,
                "done": run.done,
                "total": run.total,
            }
            for run in running
        ],
        "alarms": None,
        "outages": None,
    }
    if user.has_perm("meters.view_alarm"):
        counts = dict(
            Alarm.objects.restrict(user, "view")
            .filter(state__in=OPEN_STATES)
            .order_by()
            .values_list("severity")
            .annotate(n=Count("pk"))
        )
        result["alarms"] = {
            "total": sum(counts.values()),
            "by_severity": [
                {"severity": value, "label": label, "n": counts.get(value, 0)}
                for value, label in sorted(Severity.choices, reverse=True)
            ],
        }
        # Meters off now: open power-failure alarms below a transformer (meters/alarms/engine).
        result["outages"] = outage_summary(user)["meters_off"]
    return result


class RunProgressConsumer(JsonConsumer):
    """Live progress of one run, for users who may see that run (others: refused)."""

    async def connect(self):
        user = self.scope.get("user")
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        snapshot = await socket_db(_visible_run_snapshot)(user, run_id)
        if snapshot is None:
            await self.close(code=4404)
            return
        self.group = run_group(run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "run", "run": snapshot})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_progress(self, event):
        await self.send_json({"type": "run", "run": event["run"]})


def _visible_run_snapshot(user, run_id: int) -> dict | None:
    if user is None or not user.is_authenticated:
        return None
    run = JobRun.objects.restrict(user, "view").filter(pk=run_id).first()
    return run_snapshot(run) if run else None
