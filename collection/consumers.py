"""Websocket consumers of the collection app: live system status for signed-in staff."""

from __future__ import annotations

import asyncio

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from accounts.models import User
from amisite.display import when
from amisite.websocket import JsonConsumer, socket_db
from meters.alarms.engine import outage_summary
from meters.alarms.models import OPEN_STATES, Alarm, Severity
from meters.choices import MeterStatus
from meters.filters import Health, health_expression
from meters.models import Meter
from meters.rollup_cache import cached_rollup

from .choices import RunStatus
from .health import system_status
from .models import JobRun
from .progress import run_group, run_snapshot

STATUS_GROUP = "system-status"


REFRESH_SECONDS = 20  # the home's figures refresh this often even when nothing is published
NUDGE_DELAY_SECONDS = 0.5  # events within this delay share one recomputation


class SystemStatusConsumer(JsonConsumer):
    """The home's fleet snapshot for the signed-in user, kept fresh.

    On connect: the user's scoped snapshot. On every event published to the status group:
    the published payload as is (global facts such as workers), then a recomputed scoped
    snapshot (debounced, so a burst of events costs one), and every REFRESH_SECONDS anyway.
    Published payloads must therefore never carry organisation data; the scoped figures
    are always computed here, per user.
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user_id = user.pk
        self.refresh_task = None
        await self.channel_layer.group_add(STATUS_GROUP, self.channel_name)
        await self.accept()
        await self.send_snapshot()
        self.ticker = asyncio.ensure_future(self._tick())

    async def disconnect(self, code):
        await self.channel_layer.group_discard(STATUS_GROUP, self.channel_name)
        for task in (getattr(self, "ticker", None), getattr(self, "refresh_task", None)):
            if task is not None:
                task.cancel()

    async def status_update(self, event):
        await self.send_json({"type": "status", "status": event["status"]})
        self._nudge()

    async def status_refresh(self, event):
        self._nudge()

    def _nudge(self):
        if self.refresh_task is None or self.refresh_task.done():
            self.refresh_task = asyncio.ensure_future(self._delayed_refresh())

    async def _delayed_refresh(self):
        await asyncio.sleep(NUDGE_DELAY_SECONDS)
        await self.send_snapshot()

    async def _tick(self):
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.send_snapshot()

    async def send_snapshot(self):
        status = await socket_db(_snapshot_for)(self.user_id)
        if status is None:  # deactivated or deleted meanwhile
            await self.close(code=4403)
            return
        await self.send_json({"type": "status", "status": status})


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
    # Shared only by users who see the same organisations with the same permissions (roles
    # decide which models `restrict` lets through, and whether alarms and outages show).
    value, _ = cached_rollup(
        user,
        ["fleet-snapshot", *sorted(user.get_all_permissions())],
        lambda: _fleet_snapshot(user),
        seconds=SNAPSHOT_SECONDS,
    )
    return value


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
