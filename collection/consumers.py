"""Websocket consumers of the collection app: live system status for signed-in staff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, Count, Q, Value, When
from django.utils import timezone

from accounts import access_cache
from accounts.models import User
from accounts.scoping import has_model_perm
from amisite.display import when
from amisite.websocket import JsonConsumer, socket_db, status_db
from meters import rollup_cache
from meters.alarms.engine import meters_off
from meters.alarms.models import OPEN_STATES, Alarm, Severity
from meters.choices import MeterStatus
from meters.filters import Health, health_expression
from meters.models import CommStatus, Meter
from meters.rollup_cache import aggregate_memory, cached_per_scope

from .choices import RunStatus
from .health import read_counts
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
            forget_user(consumer.user_id)
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
        """Every user's snapshot once per REFRESH_SECONDS, the users spread over it: all of
        them at once was a burst every 20 s (1,000 operators' home pages on two workers:
        ~500 snapshots queued on each worker's status thread, ~1.5 s of work competing with
        the pages that arrived meanwhile, which is where a page's p95 is made)."""
        while True:
            for pause, users in refresh_schedule(list(self.sockets), REFRESH_SECONDS):
                await asyncio.sleep(pause)
                for user_id in users:
                    if user_id in self.sockets:  # not gone meanwhile
                        self.nudge(user_id, 0)


REFRESH_STEP_SECONDS = 0.05  # the spread refreshes wake the loop at most this often


def refresh_schedule(users: list, period: float) -> list[tuple[float, list]]:
    """[(pause, users to refresh after it)] covering `period`: each user once, the last ones
    at its end, evenly spread in steps of at least REFRESH_STEP_SECONDS."""
    if not users:
        return [(period, [])]
    steps = max(1, min(len(users), int(period / REFRESH_STEP_SECONDS)))
    per_step = -(-len(users) // steps)  # ceiling
    batches = [users[i : i + per_step] for i in range(0, len(users), per_step)]
    return [(period / len(batches), batch) for batch in batches]


_refreshers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _refresher() -> _Refresher:
    loop = asyncio.get_running_loop()
    if loop not in _refreshers:
        _refreshers[loop] = _Refresher()
    return _refreshers[loop]


def _snapshot_for(user_id: int) -> dict | None:
    # A fresh user object each time, its permissions and scope from the access cache as a
    # page request's are (every 20 s for each of 1,000 operators with the home open, five
    # queries each were most of the web's database work under load), with the same rules
    # for when they are stale: roles and grants changed since connecting apply at once.
    user = _user(user_id)
    if user is None:
        return None
    with access_cache.primed(user):
        return snapshot(user)


# The user's row, read again at least every AMI_WS_RECHECK_SECONDS (1,000 operators' status
# sockets read it 50 times a second). Any write of a user through the application closes
# their sockets at once (`accounts.sessions.revoke_sockets`); one behind its back (SQL) is
# seen by the socket's own re-check within the same time.
_rows: dict[int, tuple[float, list]] = {}
_ROW_FIELDS = [f.attname for f in User._meta.concrete_fields]


def _user(user_id: int) -> User | None:
    now = time.monotonic()
    got = _rows.get(user_id)
    if got is not None and now - got[0] < settings.AMI_WS_RECHECK_SECONDS:
        return User.from_db("default", _ROW_FIELDS, list(got[1]))
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        _rows.pop(user_id, None)
        return None
    _rows[user_id] = (now, [getattr(user, name) for name in _ROW_FIELDS])
    return user


def forget_user(user_id: int) -> None:
    _rows.pop(user_id, None)


def snapshot(user=None) -> dict:
    """The operator's home: fleet health at a glance, scoped to what `user` may see.

    Meters by registry status and by health (read OK / stale / unreachable / alarm),
    today's reads, open alarms by severity and meters off in open outages (for users who may
    see alarms), runs in progress. Without a user: only the server facts.
    """
    if user is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    # Shown as is on the home page (and updated by the websocket): the utility's zone, named.
    status = {"server_time": when(timezone.now(), seconds=True), "database": connection.vendor}
    if user is None:
        return status
    status.update(fleet_snapshot(user))
    return status


# Figures of the home page and the status socket are shared by everyone with the same scope
# and permissions: the fleet's counts (every meter with its comm status and open alarms, and
# the day's read results: ~0.5 s of PostgreSQL at 100,000 meters) for the dashboard roll-ups'
# time (`DASHBOARD_ROLLUP_SECONDS`, 15 s; the page says as of when), what changes by the
# minute and is acted on (open alarms, outages, runs) for SNAPSHOT_SECONDS. Every status
# socket asks every REFRESH_SECONDS.
SNAPSHOT_SECONDS = 5
UNREACHABLE_DAYS = 3  # "not read for 3 days" (the home's wording)


def fleet_snapshot(user) -> dict:
    """`_fleet_counts` (with `fleet_as_of`, when they were counted) and `_fleet_events`, each
    computed once per scope and permissions for its time."""
    counts = cached_per_scope(
        user,
        "fleet-counts",
        lambda: _fleet_counts(user),
        rollup_cache.ttl(),
        with_time=True,
        local=True,
    )
    counts, as_of = counts
    events = cached_per_scope(
        user, "fleet-events", lambda: _fleet_events(user), SNAPSHOT_SECONDS, local=True
    )
    return {**counts, "fleet_as_of": when(as_of, seconds=True), **events}


def _fleet_counts(user) -> dict:
    now = timezone.now()
    by_status, by_health, comm = meter_counts(user, now)
    reads = read_counts(user, now)
    return {
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
        "today": reads["today"],
        "reads_per_minute": reads["reads_per_minute"],
        "unreachable": comm["unreachable"],
        "not_read_for_days": comm["not_read"],
    }


def meter_counts(user, now) -> tuple[dict, dict, dict]:
    """(meters by registry status, meters in service by health, {unreachable, not_read}) in
    the user's scope, from one pass over the meters and their comm status. The comm figures
    count comm statuses the user may see (`CommStatus.restrict`): with both permissions
    that is the same pass; without either, its own query as before."""
    meters = Meter.objects.restrict(user, "view")
    cutoff = now - timedelta(days=UNREACHABLE_DAYS)
    comm_filters = {
        "unreachable": Q(comm_status__unreachable=True),
        "not_read": Q(comm_status__last_success__lt=cutoff),
    }
    together = has_model_perm(user, Meter, "view") and has_model_perm(user, CommStatus, "view")
    extra = {name: Count("pk", filter=q) for name, q in comm_filters.items()} if together else {}
    in_service = Case(
        When(status__in=Health.STATUSES, then=health_expression(now)),
        default=Value(None),
        output_field=CharField(),
    )
    with aggregate_memory():
        rows = list(
            meters.annotate(health=in_service)
            .values("status", "health")
            .annotate(n=Count("pk"), **extra)
            .order_by()
        )
    by_status: dict = {}
    by_health: dict = {}
    comm = dict.fromkeys(comm_filters, 0)
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["health"] is not None:
            by_health[row["health"]] = by_health.get(row["health"], 0) + row["n"]
        for name in extra:
            comm[name] += row[name]
    if not together:
        statuses = CommStatus.objects.restrict(user, "view")
        comm = {
            "unreachable": statuses.filter(unreachable=True).count(),
            "not_read": statuses.filter(last_success__lt=cutoff).count(),
        }
    return by_status, by_health, comm


def _fleet_events(user) -> dict:
    running = (
        JobRun.objects.restrict(user, "view")
        .filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .select_related("job")
        .order_by("-created_at")[:5]
    )
    result = {
        "runs_running": JobRun.objects.restrict(user, "view")
        .filter(status=RunStatus.RUNNING)
        .count(),
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
        result["outages"] = meters_off(user)
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
