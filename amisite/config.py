"""Reading and checking configuration from the environment, with one-line errors."""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from . import capacity

env = environ.Env()

SUPPORTED_DB_SCHEMES = ("postgres", "postgresql", "pgsql", "postgis", "sqlite")


def database_from_env(default_sqlite_path: str, var: str = "DATABASE_URL") -> dict:
    """The default database: DATABASE_URL if set, else the embedded SQLite file (WAL mode)."""
    url = env.str(var, default="")
    if not url:
        return sqlite_database(default_sqlite_path)
    scheme = urlsplit(url).scheme
    if scheme not in SUPPORTED_DB_SCHEMES:
        raise ImproperlyConfigured(
            f"{var} must start with postgres:// or sqlite:/// (got {redact(url)!r})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ImproperlyConfigured(f"{var} cannot be parsed ({exc})") from None
    engine = config.get("ENGINE", "")
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{var} has no database name: {redact(url)}")
    if engine.endswith("sqlite3"):
        return sqlite_database(config["NAME"])
    if engine.endswith(("postgresql", "postgresql_psycopg2", "postgis")):
        config["ENGINE"] = "django.db.backends.postgresql"
        options = config.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", 5)
        if env.bool("DB_POOL", default=True):
            # One bounded pool per process (docs/architecture.md: "Database connections").
            config["CONN_MAX_AGE"] = 0  # a connection goes back to the pool after each request
            options["pool"] = pool_options()
            # pg_stat_activity shows which kind of process holds each connection.
            options.setdefault("application_name", options["pool"]["name"])
        else:  # an external pooler (pgbouncer): Django opens a connection per request
            config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
        # A restarted database must not kill long-lived workers: a connection is checked
        # before it is reused (with the pool: before the pool hands it out).
        config["CONN_HEALTH_CHECKS"] = True
        return config
    raise AssertionError(f"unhandled engine {engine}")  # the scheme check above excludes this


def replica_from_env() -> dict | None:
    """DATABASE_REPLICA_URL: a streaming replica of the default database (PostgreSQL only) that
    pages tolerant of a few seconds' staleness read from (amisite/dbrouter.py), or None."""
    if not env.str("DATABASE_REPLICA_URL", default=""):
        return None
    config = database_from_env("", var="DATABASE_REPLICA_URL")
    if not config["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a postgres:// URL")
    options = config["OPTIONS"]
    if "pool" in options:
        options["pool"] = options["pool"] | {"name": options["pool"]["name"] + "-replica"}
        options["application_name"] = options["pool"]["name"]
    # Tests have no second server: the replica alias reads the test database itself.
    config["TEST"] = {"MIRROR": "default"}
    return config


def pool_options() -> dict:
    """psycopg_pool settings for this process: its role's maximum, a short wait when all are busy.

    Past `DB_POOL_TIMEOUT` seconds of waiting the request gets a 503
    (`amisite.middleware.DatabaseBusyMiddleware`).
    """
    role = capacity.role()
    return {
        "name": f"ami-{role}",
        "min_size": env.int("DB_POOL_MIN", default=1),
        "max_size": capacity.pool_max(role),
        "timeout": env.float("DB_POOL_TIMEOUT", default=3.0),
        "max_idle": env.float("DB_POOL_MAX_IDLE", default=120.0),
    }


def sqlite_database(path: str) -> dict:
    """SQLite in WAL mode with immediate transactions, so web and workers can share it."""
    if path and not path.startswith(("file:", ":memory:")):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


def redis_url_from_env() -> str:
    """REDIS_URL (used for the Celery broker, the channel layer and the cache); may be empty."""
    url = env.str("REDIS_URL", default="")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix") or (
            parts.scheme != "unix" and not parts.hostname
        ):
            raise ImproperlyConfigured(f"REDIS_URL is not a redis:// URL: {redact(url)}")
    return url


def broker_url_from_env(redis_url: str) -> str:
    """CELERY_BROKER_URL, else REDIS_URL, else memory:// (in-process: eager tasks, one-process
    tools and tests only)."""
    return env.str("CELERY_BROKER_URL", default=redis_url or "memory://")


def check_shared_broker(url: str, what: str) -> None:
    """Raise ImproperlyConfigured when `what` (a worker, beat, a bench) would use memory://.

    A memory:// broker lives inside one process: a worker would wait forever for tasks that
    the web process or beat put into their own memory.
    """
    if urlsplit(url).scheme == "memory":
        raise ImproperlyConfigured(
            f"{what} needs a broker shared between processes: set REDIS_URL (e.g. "
            "redis://127.0.0.1:6379/0) or CELERY_BROKER_URL; unset, the broker is memory:// "
            "and no task would ever reach a worker"
        )


def check_redis_reachable(url: str, timeout: float = 3.0) -> None:
    """Raise ImproperlyConfigured naming REDIS_URL when nothing answers PING there."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(timeout)
            sock.connect(parts.path)
        else:
            sock = socket.create_connection((parts.hostname, parts.port or 6379), timeout=timeout)
        with sock:
            sock.settimeout(timeout)
            if parts.password:
                user = parts.username or "default"
                sock.sendall(f"AUTH {user} {parts.password}\r\n".encode())
                sock.recv(64)
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"REDIS_URL cannot be reached at {redact(url)} ({exc})"
        ) from None
    if not answer.startswith(b"+PONG"):
        raise ImproperlyConfigured(f"REDIS_URL at {redact(url)} did not answer PING: {answer!r}")


def check_database_reachable(alias: str = "default") -> None:
    """Raise ImproperlyConfigured naming DATABASE_URL when the database cannot be opened."""
    from django.db import connections
    from django.db.utils import OperationalError

    connection = connections[alias]
    try:
        if connection.vendor == "postgresql":
            # Straight to the server, not through the pool (which retries in the background,
            # logging each refusal, and then only says it timed out).
            import psycopg

            with connection.wrap_database_errors:
                psycopg.connect(**connection.get_connection_params()).close()
        else:
            connection.ensure_connection()
    except OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImproperlyConfigured(f"DATABASE_URL cannot be reached ({first})") from None


def redact(url: str) -> str:
    """The URL with its password replaced, safe to print."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def system_title_from_env(name: str, default: str) -> str:
    """An 8-byte DLMS system title given as 16 hex digits, checked at start."""
    text = os.environ.get(name, "").strip() or default
    try:
        ok = len(bytes.fromhex(text)) == 8
    except ValueError:
        ok = False
    if not ok:
        raise ImproperlyConfigured(f"{name} must be 16 hex digits (8 bytes), not {text!r}")
    return text.upper()
