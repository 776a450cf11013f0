"""How many of each process, thread and database connection this machine runs.

Everything is derived from the machine's cores and can be overridden from the environment
(docs/operations.md has the table). The database connections a machine may open are the sum
of its processes' pool maxima, so that sum is what has to fit under PostgreSQL's
`max_connections` (`manage.py db_capacity` compares them on a live server).

    web     AMI_WEB_WORKERS uvicorn processes (default: cores), each running at most
            AMI_WEB_THREADS requests through Django at once (default 8); the others wait
            in the event loop, holding no thread and no connection. Its websockets' database
            work (sign-in, scope, snapshots) runs on AMI_WS_THREADS threads (default 2).
    worker  AMI_WORKER_CONCURRENCY Celery prefork children (default: cores).
    beat, push listener: one process each.

Each process names its role in `AMI_PROCESS` (the Procfile and the documented commands set
it); its pool's maximum follows from the role.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ROLES = ("web", "worker", "beat", "push", "other")

# Connections a process of each role can use at once, besides the web's request threads:
# a Celery child runs its task on one thread plus asgiref's single sync thread for the
# async collection code; beat and the push listener likewise; a web process gets one for
# each websocket thread (AMI_WS_THREADS, default 2) on top of its request threads, plus
# one for the status sockets' snapshots (their own thread, so that they never hold up a
# socket's sign-in or an alarm) and one for /healthz, which bypasses the request gate;
# commands and shells four.
SIDE_CONNECTIONS = {"web": 2, "worker": 2, "beat": 2, "push": 2, "other": 4}
STATUS_CONNECTIONS = 1
HEALTHZ_CONNECTIONS = 1


def _from_env(name: str, default, parse, kind: str, minimum):
    """`name` from the environment parsed by `parse` (unset: `default`); ImproperlyConfigured
    naming the variable if it is not `kind` or below `minimum`."""
    from django.core.exceptions import ImproperlyConfigured

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {kind} (got {raw!r})") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum} (got {raw})")
    return value


def _positive(name: str, default: int) -> int:
    return _from_env(name, default, int, "a whole number", 1)


def seconds(name: str, default: float) -> float:
    """A number of seconds from the environment (0 or more; unset: `default`)."""
    return _from_env(name, default, float, "a number of seconds", 0)


def cores() -> int:
    """CPUs this process may run on (the affinity mask, not the whole machine)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def web_workers() -> int:
    return _positive("AMI_WEB_WORKERS", cores())


def web_threads() -> int:
    return _positive("AMI_WEB_THREADS", 8)


def ws_threads() -> int:
    """Threads per web process for websocket consumers' database work (each: one connection)."""
    return _positive("AMI_WS_THREADS", SIDE_CONNECTIONS["web"])


def web_queue_timeout() -> float:
    """Seconds a request may wait for one of the web process's slots before a 503."""
    return float(os.environ.get("AMI_WEB_QUEUE_TIMEOUT", "") or 10)


def web_shutdown_seconds() -> int:
    """Seconds a web worker waits, once told to stop, for open connections (websockets stay
    open until the browser leaves) before it cancels them and exits."""
    return _positive("AMI_WEB_SHUTDOWN_SECONDS", 10)


def worker_concurrency() -> int:
    return _positive("AMI_WORKER_CONCURRENCY", cores())


def role() -> str:
    from django.core.exceptions import ImproperlyConfigured

    value = os.environ.get("AMI_PROCESS", "").strip() or "other"
    if value not in ROLES:
        raise ImproperlyConfigured(f"AMI_PROCESS must be one of {', '.join(ROLES)} (got {value!r})")
    return value


def pool_max(for_role: str | None = None) -> int:
    """The most database connections one process of this role opens (DB_POOL_MAX overrides)."""
    for_role = for_role or role()
    if for_role == "web":
        default = web_threads() + ws_threads() + STATUS_CONNECTIONS + HEALTHZ_CONNECTIONS
    else:
        default = SIDE_CONNECTIONS[for_role]
    return _positive("DB_POOL_MAX", default)


@dataclass(frozen=True)
class Plan:
    """One machine's processes and the database connections they may hold."""

    web_workers: int
    web_threads: int
    worker_concurrency: int
    web_pool: int
    worker_pool: int
    beat_pool: int
    push_pool: int

    @property
    def total(self) -> int:
        return (
            self.web_workers * self.web_pool
            + self.worker_concurrency * self.worker_pool
            + self.beat_pool
            + self.push_pool
        )

    def rows(self) -> list[tuple[str, int, int]]:
        """(process, how many, connections each)."""
        return [
            ("web (uvicorn worker)", self.web_workers, self.web_pool),
            ("worker (Celery child)", self.worker_concurrency, self.worker_pool),
            ("beat", 1, self.beat_pool),
            ("push listener", 1, self.push_pool),
        ]


def plan() -> Plan:
    """This machine's plan, from its cores and the environment."""
    return Plan(
        web_workers=web_workers(),
        web_threads=web_threads(),
        worker_concurrency=worker_concurrency(),
        web_pool=pool_max("web"),
        worker_pool=pool_max("worker"),
        beat_pool=pool_max("beat"),
        push_pool=pool_max("push"),
    )


def machines_that_fit(max_connections: int, reserved: int, headroom: int, one: Plan) -> int:
    """How many machines with this plan PostgreSQL can serve at once.

    `reserved` is PostgreSQL's superuser_reserved_connections; `headroom` is kept for
    migrations, `manage.py` commands, backups and a psql session.
    """
    usable = max_connections - reserved - headroom
    return max(usable // one.total, 0) if one.total else 0
