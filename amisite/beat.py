"""Celery beat with a standby: run it on two or more hosts, exactly one sends (the leader).

    AMI_PROCESS=beat python -m amisite.beat [celery beat options]

Leadership is a Redis lock (redis-py's `Lock`, on `REDIS_URL`, the Redis every process
already shares) with a time to live of `AMI_BEAT_LOCK_TTL` seconds (default 30). The leader
renews it every third of that; a standby tries to take it every second. A leader that cannot
renew in time (Redis unreachable, the process stalled) stops at once with exit status 3,
before the lock can expire under it, so two leaders never overlap; its supervisor restarts
it as a standby. When a leader dies, a standby takes over within the time to live.

No schedule slot is sent twice or never: the database scheduler records each entry's last
run right after sending it (`CELERY_BEAT_SYNC_EVERY = 1`), and the new leader reads those
records, so it sends what was due and not sent (once, however long the gap) and nothing
that was sent. The one window left is a leader killed between sending a task and recording
it (microseconds); the tasks beat sends are idempotent (a second read run stores nothing new).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time

import django
import redis
from django.conf import settings
from redis.exceptions import LockError, RedisError

from .celery import app

logger = logging.getLogger("amisite.beat")

LOCK_NAME = "ami:beat:leader"
EXIT_LOST_LEADERSHIP = 3


def lock_ttl() -> float:
    return float(os.environ.get("AMI_BEAT_LOCK_TTL", "30"))


def acquire(client: redis.Redis, ttl: float, *, poll: float = 1.0):
    """Block until this process holds the leader lock; returns the lock."""
    lock = client.lock(LOCK_NAME, timeout=ttl, thread_local=False)
    announced = False
    while True:
        try:
            if lock.acquire(blocking=False, token=_identity().encode()):
                return lock
        except RedisError as exc:
            logger.warning("beat standby: Redis unreachable (%s); retrying", exc)
        if not announced:
            holder = _holder(client)
            logger.info("beat standby: %s is the leader; waiting to take over", holder or "another")
            announced = True
        time.sleep(poll)


def keep(lock, ttl: float, on_lost) -> threading.Thread:
    """Renew `lock` every ttl/3; call `on_lost` when it cannot be renewed in time."""

    def renew():
        deadline = time.monotonic() + ttl
        while True:
            time.sleep(ttl / 3)
            try:
                lock.reacquire()
                deadline = time.monotonic() + ttl
            except (LockError, RedisError) as exc:
                # Stop well before the lock could expire and another leader start.
                if isinstance(exc, LockError) or time.monotonic() > deadline - ttl / 3:
                    on_lost(exc)
                    return
                logger.warning("beat leader: could not renew the lock yet (%s)", exc)

    thread = threading.Thread(target=renew, name="beat-leader-lock", daemon=True)
    thread.start()
    return thread


def _identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder(client: redis.Redis) -> str:
    try:
        value = client.get(LOCK_NAME)
    except RedisError:
        return ""
    return value.decode(errors="replace") if value else ""


def _lost(exc: BaseException) -> None:
    logger.error("beat leader: lost the leader lock (%s); stopping so a standby leads", exc)
    logging.shutdown()
    os._exit(EXIT_LOST_LEADERSHIP)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    django.setup()
    url = settings.REDIS_URL
    if not url:
        print("configuration error: beat with a standby needs REDIS_URL", file=sys.stderr)
        sys.exit(2)
    ttl = lock_ttl()
    client = redis.Redis.from_url(url, socket_connect_timeout=ttl / 6, socket_timeout=ttl / 6)
    lock = acquire(client, ttl)
    logger.info("beat leader: %s leads (lock time to live %.0f s)", _identity(), ttl)
    keep(lock, ttl, _lost)
    app.start(["beat", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
