"""What the push listener's health check asks (Django side): can a push be handed off now?

The listener (``manage.py listen_push --health-port``) answers its balancer's HTTP check with
:class:`collection.push.server.HealthServer`; these are the checks behind it. A listener that
cannot hand a push to the broker (or, with eager Celery, to the database) is taken out of the
balancer, so the meters' pushes go to one that can.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from celery import current_app
from django.db import connection

CHECK_TIMEOUT = 2.0  # seconds per check; a check that takes longer fails


def database_ping() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        connection.close()  # a broken connection is opened anew at the next check
        raise


def broker_ping() -> None:
    url = current_app.conf.broker_url or ""
    if urlsplit(url).scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(
            url, socket_connect_timeout=CHECK_TIMEOUT / 2, socket_timeout=CHECK_TIMEOUT / 2
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT / 2)


async def _probe(function, thread_sensitive: bool) -> str:
    try:
        await asyncio.wait_for(
            sync_to_async(function, thread_sensitive=thread_sensitive)(), CHECK_TIMEOUT
        )
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"unreachable: {exc.__class__.__name__}: {str(exc)[:120]}"
    return "ok"


def checks(server, sink, backlog_limit: int = 10_000):
    """The coroutine function :class:`HealthServer` calls for ``server`` and its ``sink``."""

    async def check() -> dict[str, str]:
        out = {"listener": "draining" if server.draining else "ok"}
        if getattr(sink, "failing", False):
            out["hand-off"] = "the last push could not be handed off"
        elif getattr(sink, "pending", 0) > backlog_limit:
            out["hand-off"] = f"{sink.pending} pushes waiting to be handed off"
        else:
            out["hand-off"] = "ok"
        if not current_app.conf.task_always_eager:  # eager Celery hands off to the database
            out["broker"] = await _probe(broker_ping, thread_sensitive=False)
        # The lookup thread's own connection: the one sender lookups use.
        out["database"] = await _probe(database_ping, thread_sensitive=True)
        return out

    return check


__all__ = ["broker_ping", "checks", "database_ping"]
