"""System status for operators: workers, queues, beat, read rates, success, unreachable meters."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from amisite.celery import app
from meters.models import CommStatus

from .choices import ResultStatus, RunStatus
from .models import JobRun, MeterReadResult

log = logging.getLogger(__name__)
HEARTBEAT_KEY = "ami:beat-heartbeat"
QUEUES = ("collect", "default")


def record_heartbeat() -> None:
    """Called by beat's heartbeat task every minute: proves beat and a worker are alive."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=24 * 3600)


def workers_alive(timeout: float = 1.0) -> list[str]:
    """Names of the Celery workers that answered a ping (cached for 15 s)."""
    cached = cache.get("ami:workers")
    if cached is not None:
        return cached
    try:
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except Exception as exc:  # broker down: say so on the page rather than fail it
        log.warning("worker ping failed: %s", exc)
        replies = {}
    names = sorted(replies)
    cache.set("ami:workers", names, timeout=15)
    return names


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per queue (Redis broker only; None where it cannot be known)."""
    url = settings.CELERY_BROKER_URL
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        return dict.fromkeys(QUEUES)
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        return {queue: client.llen(queue) for queue in QUEUES}
    except redis.RedisError as exc:
        log.warning("queue depth unavailable: %s", exc)
        return dict.fromkeys(QUEUES)


RECENT_MINUTES = 15  # reads per minute: over this many minutes


def read_counts(user, now) -> dict:
    """Reads today (ok, failed, success rate) and reads per minute of the last
    RECENT_MINUTES, in the user's scope: one pass over the results since the earlier bound."""
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    recent_start = now - timedelta(minutes=RECENT_MINUTES)
    counts = (
        MeterReadResult.objects.restrict(user, "view")
        .filter(finished_at__gte=min(day_start, recent_start))
        .aggregate(
            ok=Count("pk", filter=Q(status=ResultStatus.OK, finished_at__gte=day_start)),
            failed=Count("pk", filter=Q(status=ResultStatus.FAILED, finished_at__gte=day_start)),
            recent=Count("pk", filter=Q(finished_at__gte=recent_start)),
        )
    )
    attempted = counts["ok"] + counts["failed"]
    return {
        "reads_per_minute": round(counts["recent"] / RECENT_MINUTES, 1),
        "today": {
            "ok": counts["ok"],
            "failed": counts["failed"],
            "success_rate": round(100 * counts["ok"] / attempted, 1) if attempted else None,
        },
    }


def system_status(user, *, unreachable_days: int = 3, include_workers: bool = True) -> dict:
    """Everything the status page shows, scoped to what the user may see."""
    now = timezone.now()
    runs = JobRun.objects.restrict(user, "view")
    comm = CommStatus.objects.restrict(user, "view")
    status = {
        "server_time": now.isoformat(),
        "last_beat": cache.get(HEARTBEAT_KEY),
        "queues": queue_depths(),
        **read_counts(user, now),
        "runs_running": runs.filter(status=RunStatus.RUNNING).count(),
        "unreachable": comm.filter(unreachable=True).count(),
        "not_read_for_days": comm.filter(
            last_success__lt=now - timedelta(days=unreachable_days)
        ).count(),
        "unreachable_days": unreachable_days,
    }
    if include_workers:
        status["workers"] = workers_alive()
    return status
