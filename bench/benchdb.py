"""Throwaway PostgreSQL databases for the benchmarks: create, point Django at, migrate, drop."""

from __future__ import annotations

import os
import resource


def server_url() -> str:
    """DATABASE_URL's server without the database name (a PostgreSQL one; else the local)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return url.rsplit("/", 1)[0]


def _admin(url: str):
    import psycopg

    return psycopg.connect(url + "/postgres", autocommit=True)


def setup_django(url: str, name: str, *, create: bool = True, **env: str) -> None:
    """(Re)create database `name` (`create`; else use it as it is), point Django at it (plus
    `env`), set Django up, migrate."""
    if create:
        admin = _admin(url)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            cur.execute(f"CREATE DATABASE {name}")
        admin.close()
    os.environ["DATABASE_URL"] = f"{url}/{name}"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop_database(url: str, name: str) -> None:
    """Drop it, forcing off connections a worker or server thread may still hold."""
    from django.db import connections

    connections.close_all()
    admin = _admin(url)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM of its memory (Linux). `ru_maxrss` is not it: Linux
    keeps the largest RSS of the process across exec, so a child forked from a parent that
    had loaded the fleet reported the parent's size (289 MB for every figure)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
