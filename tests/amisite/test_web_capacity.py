"""Under a burst the web process queues, then answers 503 with Retry-After; never a 500.

The server tests start the real web process (`python -m amisite.serve`: uvicorn, DEBUG
off, the pooled PostgreSQL settings) on the test database and hit it from many threads.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from amisite import capacity, proctree
from amisite.webgate import RequestGate

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ sizing from the machine


def test_sizes_follow_the_cores_unless_the_environment_says_otherwise(monkeypatch):
    names = ("AMI_WEB_WORKERS", "AMI_WEB_THREADS", "AMI_WS_THREADS", "AMI_WORKER_CONCURRENCY")
    for name in (*names, "DB_POOL_MAX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(capacity, "cores", lambda: 6)
    plan = capacity.plan()
    assert (plan.web_workers, plan.worker_concurrency) == (6, 6)
    # request threads + websocket threads + status snapshots + /healthz (bypasses the gate)
    assert plan.web_pool == plan.web_threads + capacity.ws_threads() + 1 + 1
    assert plan.total == 6 * plan.web_pool + 6 * plan.worker_pool + plan.beat_pool + plan.push_pool

    monkeypatch.setenv("AMI_WEB_WORKERS", "3")
    monkeypatch.setenv("AMI_WEB_THREADS", "4")
    monkeypatch.setenv("AMI_WORKER_CONCURRENCY", "1")
    monkeypatch.setenv("AMI_WS_THREADS", "3")
    plan = capacity.plan()
    assert (plan.web_workers, plan.web_threads, plan.worker_concurrency) == (3, 4, 1)
    assert plan.web_pool == 4 + 3 + 1 + 1


@pytest.mark.parametrize("value", ["0", "-2", "lots"])
def test_a_bad_size_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("AMI_WEB_THREADS", value)
    with pytest.raises(ImproperlyConfigured, match="AMI_WEB_THREADS"):
        capacity.web_threads()


def test_an_unknown_process_role_is_refused(monkeypatch):
    monkeypatch.setenv("AMI_PROCESS", "webserver")
    with pytest.raises(ImproperlyConfigured, match="AMI_PROCESS"):
        capacity.role()


def test_machines_that_fit_under_max_connections():
    one = capacity.Plan(2, 8, 2, 10, 2, 2, 2)  # 2x10 + 2x2 + 2 + 2 = 28
    assert one.total == 28
    assert capacity.machines_that_fit(100, 3, 10, one) == 3  # 87 // 28
    assert capacity.machines_that_fit(20, 3, 10, one) == 0


@pytest.mark.postgres
def test_db_capacity_compares_the_plan_with_the_servers_max_connections(db, monkeypatch):
    from io import StringIO

    from django.core.management import CommandError, call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    monkeypatch.delenv("DB_POOL_MAX", raising=False)
    monkeypatch.setenv("AMI_WEB_WORKERS", "1")
    monkeypatch.setenv("AMI_WORKER_CONCURRENCY", "1")
    out = StringIO()
    call_command("db_capacity", "--headroom", "0", stdout=out)
    assert f"max_connections {max_connections}" in out.getvalue()
    monkeypatch.setenv("AMI_WEB_THREADS", str(max_connections))  # one web worker alone is too many
    with pytest.raises(CommandError, match="exceed"):
        call_command("db_capacity", stdout=StringIO())


# ------------------------------------------------------------------ the request gate


def _run(coro):
    return asyncio.run(coro)


class _Held:
    """An ASGI app whose requests finish only when released (counts those inside)."""

    def __init__(self):
        self.inside = 0
        self.most = 0
        self.release = None

    async def __call__(self, scope, receive, send):
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.inside -= 1


async def _request(app, path="/x") -> dict:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    start = sent[0]
    return {"status": start["status"], "headers": dict(start.get("headers", []))}


def test_the_gate_lets_in_at_most_its_limit_and_queues_the_rest():
    async def scenario():
        inner = _Held()
        inner.release = asyncio.Event()
        gate = RequestGate(inner, limit=3, queue_timeout=30)
        tasks = [asyncio.create_task(_request(gate)) for _ in range(12)]
        while inner.inside < 3:
            await asyncio.sleep(0)
        assert gate.waiting == 9
        inner.release.set()
        results = await asyncio.gather(*tasks)
        return inner.most, [r["status"] for r in results]

    most, statuses = _run(scenario())
    assert most == 3
    assert statuses == [200] * 12


def test_a_request_waiting_past_the_queue_timeout_gets_503_with_retry_after():
    async def scenario():
        inner = _Held()
        inner.release = asyncio.Event()
        gate = RequestGate(inner, limit=1, queue_timeout=0.05)
        first = asyncio.create_task(_request(gate))
        while inner.inside < 1:
            await asyncio.sleep(0)
        second = await _request(gate)  # waits 50 ms for the one slot, then gives up
        inner.release.set()
        return await first, second

    first, second = _run(scenario())
    assert first["status"] == 200
    assert second["status"] == 503
    assert second["headers"][b"retry-after"] == b"5"


def test_websockets_are_not_gated():
    async def scenario():
        seen = []

        async def app(scope, receive, send):
            seen.append(scope["type"])

        gate = RequestGate(app, limit=1, queue_timeout=0.01)
        gate._semaphore()
        await gate._slots.acquire()  # the only HTTP slot is taken
        await gate({"type": "websocket", "path": "/ws/"}, None, None)
        return seen

    assert _run(scenario()) == ["websocket"]


def test_healthz_is_not_gated():
    """Liveness, and the benches' baseline, must not wait behind the pages."""

    async def scenario():
        inner = _Held()
        inner.release = asyncio.Event()
        gate = RequestGate(inner, limit=1, queue_timeout=0.05)
        page = asyncio.create_task(_request(gate))
        while inner.inside < 1:
            await asyncio.sleep(0)
        health = asyncio.create_task(_request(gate, "/healthz"))
        while inner.inside < 2:  # in beside the page, not waiting for its slot
            await asyncio.sleep(0)
        other = await _request(gate, "/meters/")  # a page waits, then gets its 503
        inner.release.set()
        return await health, other, await page

    health, other, page = _run(scenario())
    assert (health["status"], other["status"], page["status"]) == (200, 503, 200)


# ------------------------------------------------------------------ a real server process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def web_process(**env_overrides):
    """`python -m amisite.serve` on the test database; yields its base (host, port)."""
    from django.db import connection

    settings_dict = connection.settings_dict
    port = _free_port()
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        {
            "DATABASE_URL": (
                f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST']}:"
                f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
            ),
            "DEBUG": "false",
            "AMI_HOST": "127.0.0.1",
            "AMI_PORT": str(port),
            "AMI_WEB_WORKERS": "1",
            "DB_POOL": "true",  # the suite's own process runs without one (tests/services.py)
            **env_overrides,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "amisite.serve", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "web process exited:\n" + "".join(output)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "web process did not listen"
                time.sleep(0.1)
        yield ("127.0.0.1", port), output
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


def _get(address, path, cookie=None, timeout=60):
    conn = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"} if cookie else {})
        response = conn.getresponse()
        response.read()
        return response.status, response.headers  # names in any case, as HTTP has them
    finally:
        conn.close()


def _signed_in_cookie() -> str:
    from django.test import Client

    from tests.factories import make_world

    world = make_world()
    client = Client()
    client.force_login(world.operator_a)
    return client.cookies["sessionid"].value


def _server_connections(application_name: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_a_burst_above_the_pool_size_is_served_without_5xx(transactional_db):
    cookie = _signed_in_cookie()
    threads, pool = 2, 3
    paths = ["/meters/", "/", "/alarms/", "/healthz", "/api/meters/"] * 8  # 40 at once
    with web_process(AMI_WEB_THREADS=str(threads), DB_POOL_MAX=str(pool)) as (address, log):
        assert _get(address, "/healthz")[0] == 200
        peak, stop = [0], threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], _server_connections("ami-web"))
                stop.wait(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(len(paths)) as pool_of_clients:
                results = list(pool_of_clients.map(lambda p: (p, *_get(address, p, cookie)), paths))
        finally:
            stop.set()
            watcher.join()
    statuses = {(path, status) for path, status, _ in results}
    assert all(status == 200 for _, status in statuses), statuses
    assert peak[0] <= pool, f"{peak[0]} connections open, pool max {pool}"
    assert not [line for line in log if "Traceback" in line], "".join(log)


@pytest.mark.postgres
def test_an_exhausted_pool_answers_503_with_retry_after_not_500(transactional_db):
    """One pooled connection, held by a request blocked on a lock: the next request gets 503."""
    import psycopg
    from django.db import connection

    cookie = _signed_in_cookie()
    dsn = connection.get_connection_params()
    dsn = {k: v for k, v in dsn.items() if k in ("dbname", "user", "host", "port")}
    env = {"AMI_WEB_THREADS": "4", "DB_POOL_MAX": "1", "DB_POOL_MIN": "1", "DB_POOL_TIMEOUT": "0.5"}
    with (
        web_process(**env) as (address, log),
        psycopg.connect(**dsn) as locker,
        psycopg.connect(**dsn, autocommit=True) as watcher,
    ):
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE accounts_user IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(1) as background:
            held = background.submit(_get, address, "/meters/", cookie)
            deadline = time.monotonic() + 30
            while not _waiting_on_lock(watcher):  # the one pooled connection is now taken
                assert time.monotonic() < deadline, "the first request never reached the lock"
                assert not held.done(), held.result()
                time.sleep(0.02)
            status, headers = _get(address, "/meters/", cookie)
            api_status, api_headers = _get(address, "/api/meters/", cookie)
            locker.commit()  # the lock goes; the first request finishes normally
            first_status, _ = held.result(timeout=30)
    assert (status, headers.get("Retry-After")) == (503, "5")
    assert (api_status, api_headers.get("Retry-After")) == (503, "5")
    assert api_headers["Content-Type"].startswith("application/json")
    assert first_status == 200
    text = "".join(log)
    assert "Traceback" not in text and "database busy or unavailable" in text


def _waiting_on_lock(watcher) -> bool:
    # Its own autocommit connection: pg_stat_activity is a snapshot per transaction.
    with watcher.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'ami-web' AND wait_event_type = 'Lock'"
        )
        return cur.fetchone()[0] > 0


def _send_and_hang_up_later(address, path, cookie) -> socket.socket:
    """A raw client that sends its request and reads nothing (closed by the caller)."""
    sock = socket.create_connection(address, timeout=10)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {address[0]}\r\nCookie: sessionid={cookie}\r\n\r\n".encode()
    )
    return sock


def _users_locked(dsn):
    import psycopg

    locker = psycopg.connect(**dsn)
    locker.execute("LOCK TABLE accounts_user IN ACCESS EXCLUSIVE MODE")
    return locker


def _lock_waiters(watcher) -> int:
    with watcher.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'ami-web' AND wait_event_type = 'Lock'"
        )
        return cur.fetchone()[0]


def _wait_for(condition, what, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.postgres
def test_clients_that_hang_up_mid_request_give_their_connections_back(transactional_db):
    """Clients gone while their requests hold every pooled connection (and more queue at the
    gate): afterwards every connection of the pool can be taken again, no 5xx anywhere."""
    import psycopg
    from django.db import connection

    cookie = _signed_in_cookie()
    dsn = connection.get_connection_params()
    dsn = {k: v for k, v in dsn.items() if k in ("dbname", "user", "host", "port")}
    threads = 3
    env = {
        "AMI_WEB_THREADS": str(threads),
        "DB_POOL_MAX": str(threads),  # no spare: one connection not given back is a 503 below
        "DB_POOL_TIMEOUT": "2",
        "AMI_WEB_QUEUE_TIMEOUT": "60",
    }
    paths = ["/meters/", "/", "/alarms/", "/api/meters/"] * 5  # 20 clients, 3 get in at once
    with (
        web_process(**env) as (address, log),
        psycopg.connect(**dsn, autocommit=True) as watcher,
    ):
        for _ in range(2):  # twice: what the first round leaked would starve the second
            locker = _users_locked(dsn)
            clients = [_send_and_hang_up_later(address, p, cookie) for p in paths]
            _wait_for(lambda: _lock_waiters(watcher) == threads, "requests never held the pool")
            for client in clients:  # mid-request: 3 inside Django, 17 waiting at the gate
                client.close()
            time.sleep(0.2)
            locker.commit()  # the requests inside finish, for nobody
            locker.close()

        # Every pooled connection again: `threads` requests each hold one at the same time.
        locker = _users_locked(dsn)
        with ThreadPoolExecutor(threads) as background:
            held = [background.submit(_get, address, "/meters/", cookie) for _ in range(threads)]
            _wait_for(
                lambda: _lock_waiters(watcher) == threads or any(h.done() for h in held),
                "the pool did not hand out all its connections",
            )
            all_in = _lock_waiters(watcher) == threads
            locker.commit()
            locker.close()
            statuses = [h.result(timeout=30)[0] for h in held]
        health = _get(address, "/healthz")[0]
    assert all_in, statuses
    assert statuses == [200] * threads and health == 200
    text = "".join(log)
    assert "Traceback" not in text and "Internal Server Error" not in text, text
    assert "503" not in text, text  # the gate's and the pool's 503s are logged


def _websocket_that_never_answers(address, path, cookie) -> socket.socket:
    """A browser tab that opened a socket and then hung: it never answers a close frame."""
    import base64

    sock = socket.create_connection(address, timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
        f"Origin: http://{address[0]}:{address[1]}\r\nCookie: sessionid={cookie}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the handshake"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
    return sock


@pytest.mark.postgres
def test_a_stopped_web_process_exits_with_websockets_still_open(transactional_db):
    """Told to stop, the master and its workers are gone within AMI_WEB_SHUTDOWN_SECONDS
    although a browser keeps its socket open and never answers the close: before, a worker
    waited for it for ever (the status socket's ticking task kept it busy), holding its pooled
    connections, after its master was killed."""
    cookie = _signed_in_cookie()
    with web_process(AMI_WEB_WORKERS="2", AMI_WEB_SHUTDOWN_SECONDS="1") as (address, log):
        hung = [
            _websocket_that_never_answers(address, path, cookie)
            for path in ("/ws/alarms/", "/ws/status/") * 2
        ]
        master = next(
            p for p in proctree.descendants(os.getpid()) if "amisite.serve" in proctree.cmdline(p)
        )
        workers = proctree.descendants(master)
        assert workers
        os.kill(master, signal.SIGTERM)
        try:
            _wait_for(
                lambda: not any(proctree.alive(p) for p in [master, *workers]),
                "the web process outlived its stop with websockets open",
                seconds=15,
            )
        finally:  # a failed run leaves no orphan worker behind
            for pid in workers:
                if proctree.alive(pid):
                    os.kill(pid, signal.SIGKILL)
        for sock in hung:
            sock.close()
    assert "Traceback" not in "".join(log)
