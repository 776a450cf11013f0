"""Throwaway PostgreSQL databases for the benchmarks: create, point Django at, migrate, drop."""

from __future__ import annotations

import os


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
