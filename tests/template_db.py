"""The migrated template the test databases are cloned from (PostgreSQL only).

Migrating an empty database takes about a minute, and every test database paid it: each
pytest-xdist worker's and the serial run's. Now the first of them migrates a template
database once -- `<database>_tpl_<fingerprint>`, under a PostgreSQL advisory lock so the
others wait for it -- and each test database is created from it
(``CREATE DATABASE ... TEMPLATE``, Django's ``TEST["TEMPLATE"]``). Django then still runs
`migrate` on the copy, which finds every migration applied and only runs the post_migrate
handlers (content types, permissions, the role groups), so a stale template could only
cost a migration, never skip one.

The fingerprint covers everything a migrated database depends on: every Python file of the
project's apps (migrations, models, the post_migrate handlers, settings) and the pinned
dependencies (constraints.txt: third-party migrations). Any change to them makes a new
template; a clean clone on a fresh server (CI) makes one per run, reused by the workers and
the serial run; changing only tests reuses it. Older templates of the same database name
are dropped when a new one is made. The template is built by a `manage.py migrate`
subprocess, written under a temporary name and renamed when complete: a build that dies
half way leaves nothing a later run would take for a template.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "amisite", "collection", "loadcontrol", "meters", "portal", "reports",
        "vending")  # fmt: skip


def fingerprint() -> str:
    digest = hashlib.sha256()
    files = sorted(p for app in APPS for p in (ROOT / app).rglob("*.py"))
    for path in [*files, ROOT / "constraints.txt"]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _admin(settings_db: dict):
    """An autocommit connection to the server's maintenance database."""
    import psycopg

    return psycopg.connect(
        dbname="postgres",
        user=settings_db.get("USER") or None,
        password=settings_db.get("PASSWORD") or None,
        host=settings_db.get("HOST") or None,
        port=settings_db.get("PORT") or None,
        autocommit=True,
    )


def _url(settings_db: dict, name: str) -> str:
    from urllib.parse import quote

    user = quote(settings_db.get("USER") or "")
    password = settings_db.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_db.get("HOST") or "127.0.0.1"
    port = settings_db.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{name}"


def ensure_template(settings_db: dict) -> str:
    """The name of a migrated template for this database and code, made if missing."""
    prefix = f"{settings_db['NAME']}_tpl_"
    name = prefix + fingerprint()
    building = f"{name}_building"
    with _admin(settings_db) as admin:
        lock = zlib.crc32(name.encode())
        admin.execute("SELECT pg_advisory_lock(%s)", [lock])
        try:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if exists.fetchone():
                return name
            admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
            admin.execute(f'CREATE DATABASE "{building}"')
            env = {**os.environ, "DATABASE_URL": _url(settings_db, building)}
            env.pop("DATABASE_REPLICA_URL", None)
            done = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
                raise RuntimeError(f"migrating the test template failed:\n{done.stderr}")
            admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            _drop_older(admin, prefix, name)
            return name
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", [lock])


def _drop_older(admin, prefix: str, keep: str) -> None:
    """Templates of earlier code for the same database (one in use stays: next time)."""
    import psycopg

    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND datname <> %s",
        [prefix, keep],
    ).fetchall()
    for (old,) in rows:
        if old.endswith("_building"):
            continue  # another fingerprint's build in progress (its own lock)
        try:
            admin.execute(f'DROP DATABASE "{old}"')
        except psycopg.Error:
            pass
