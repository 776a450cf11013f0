"""Suite-wide fixtures: markers, the ASGI server, the browser (Redis: tests/services.py)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.services import IN_CI


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if not settings.configured:  # pure-library runs with -p no:django
        return
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords:
            if IN_CI:
                raise pytest.UsageError("CI runs on PostgreSQL: set DATABASE_URL=postgres://...")
            item.add_marker(skip)


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright; missing in CI is a failure, not a skip.

    Module-scoped: Playwright's sync API keeps an event loop running while it is open, which
    async tests in other modules must not inherit.
    """
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs it (apt chromium)")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def asgi_server(transactional_db):
    """The real ASGI application (HTTP + websockets) under uvicorn on a free loopback port."""
    import threading

    import uvicorn

    from amisite.asgi import application

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,  # as amisite/serve.py: the application decides
            timeout_graceful_shutdown=SERVER_GRACE_SECONDS,  # then its tasks are cancelled
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    stop_server(server, thread)


SERVER_GRACE_SECONDS = 5


def stop_server(server, thread, graceful: float = SERVER_GRACE_SECONDS) -> None:
    """Stop uvicorn for good before the test's database is flushed.

    A graceful stop waits without limit for every connection and task, and the old 10-s join
    then gave up silently. A server left running in the worker process reads in transactions
    during later tests' flushes and keeps the process's channel layer receiving on its loop,
    which is what CI stop 28 showed in one worker: a flush waiting out 300 s, then later
    tests' sockets failing with "Two event loops are trying to receive() on one channel
    layer at once". After `graceful` seconds uvicorn cancels what still runs, after twice
    that the stop is forced, and a server running after that fails this test, with its
    thread's stack, not a later one."""
    import sys
    import traceback

    server.should_exit = True
    thread.join(timeout=2 * graceful)
    if thread.is_alive():
        server.force_exit = True
        thread.join(timeout=15)
    if thread.is_alive():
        stack = "".join(traceback.format_stack(sys._current_frames()[thread.ident]))
        pytest.fail(f"the test server did not stop within {2 * graceful + 15:.0f} s:\n{stack}")


@pytest.fixture(scope="session", autouse=True)
def _quick_flush():
    """Transactional tests end with a DELETE from the tables they filled (tests/quick_flush.py)."""
    from tests import quick_flush

    quick_flush.install()
    yield
    quick_flush.uninstall()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Each test database is a copy of a template migrated once (tests/template_db.py)."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    test = default.setdefault("TEST", {})
    if default["ENGINE"] != "django.db.backends.postgresql" or test.get("TEMPLATE"):
        return
    from tests.template_db import ensure_template

    test["TEMPLATE"] = ensure_template(default)


@pytest.fixture
def world(db):
    """Two organisations with grids and the users of STYLE.md (see tests/factories.py)."""
    from tests.factories import make_world

    return make_world()


@pytest.fixture(autouse=True)
def _fast_password_hashing(request):
    # Users are made in nearly every test; the real hasher is deliberately slow. Pure-library
    # runs (-p no:django) have no settings to change.
    if request.config.pluginmanager.hasplugin("django"):
        settings = request.getfixturevalue("settings")
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        # Dashboard roll-ups are not cached in tests (tests/meters/test_rollup_cache.py
        # turns the cache on): most tests change data and look again at once.
        settings.DASHBOARD_ROLLUP_SECONDS = 0
        # Last month's bill is issued (stored, with its PDF) whatever day the suite runs on;
        # tests/portal/test_bills.py sets a grace to see a provisional bill.
        settings.AMI_PORTAL_BILL_GRACE_DAYS = 0
        # Exchange folders (reports/exchange/) of a test are its own, never the repo's var/.
        settings.AMI_EXCHANGE_ROOT = request.getfixturevalue("tmp_path") / "exchange"


@pytest.fixture(autouse=True)
def _no_cached_access_from_earlier_tests(request):
    """Permissions and scope cached in Redis (accounts/access_cache.py) by an earlier test
    are never this test's: their rows were rolled back."""
    if request.config.pluginmanager.hasplugin("django"):
        from accounts import access_cache

        access_cache.bump()


@pytest.fixture
def eager_celery():
    """Celery tasks run in the caller, errors raised (modules may define their own)."""
    from amisite.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture(autouse=True)
def _force_login_is_past_the_second_factor(monkeypatch):
    """`force_login` skips the sign-in form: both its factors, not only the password.

    Tests of the second factor itself sign in through the forms (tests/accounts/
    test_two_factor.py); everything else acts as a user already past them.
    """
    from django.test.client import ClientMixin

    from accounts.two_factor import SESSION_KEY

    original = ClientMixin.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        session = self.session
        session[SESSION_KEY] = user.pk
        session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login)


@pytest.fixture(autouse=True)
def _socket_work_done_before_the_flush(request, _django_db_marker):
    """Websocket work a test's sockets started may still run on the sockets' own threads
    when the test ends (a status snapshot of a socket already closed: its roll-up reads in
    a transaction). A transactional test's flush then TRUNCATEs beside it, and the two
    deadlocked (CI preview, 2026-12-06). Set up after the database fixture, so torn down
    before it: wait until the threads have finished what they were given."""
    yield
    import sys
    import threading

    websocket = sys.modules.get("amisite.websocket")  # None: no socket in this process yet
    for executor in (websocket._status_thread, websocket._threads) if websocket else ():
        workers = executor._max_workers
        gate = threading.Barrier(workers + 1)
        for _ in range(workers):  # every thread of the pool parked here: all earlier work done
            executor.submit(gate.wait, 30)
        gate.wait(30)
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        _report_a_stuck_teardown(os.environ.get("PYTEST_CURRENT_TEST"))


STUCK_TEARDOWN_SECONDS = 60


def _report_a_stuck_teardown(phase: str | None) -> None:
    """If this test's teardown (the flush, next) still runs in STUCK_TEARDOWN_SECONDS, print
    who holds it: the PostgreSQL sessions blocking ours and every thread's stack. A flush
    once waited out pytest-timeout's 300 s with nothing to say what it waited for."""
    import sys
    import threading
    import traceback

    def report():
        if os.environ.get("PYTEST_CURRENT_TEST") != phase:
            return  # finished: the next test (or none) is running
        lines = [f"{phase}: still tearing down after {STUCK_TEARDOWN_SECONDS} s"]
        try:
            import psycopg
            from django.db import connection

            settings = connection.settings_dict
            with psycopg.connect(
                dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"],
                port=settings["PORT"] or 5432, autocommit=True,
            ) as db:  # fmt: skip
                rows = db.execute(
                    "SELECT pid, pg_blocking_pids(pid), state, xact_start, left(query, 200)"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                ).fetchall()
            lines += [f"  session {row}" for row in rows]
        except Exception as exc:  # noqa: BLE001 - a report, not a test
            lines.append(f"  (sessions not read: {exc!r})")
        for thread in threading.enumerate():
            frame = sys._current_frames().get(thread.ident)
            if frame is not None:
                lines.append(f"  thread {thread.name}:")
                lines += ["    " + line for line in traceback.format_stack(frame)[-8:]]
        sys.__stderr__.write("\n".join(lines) + "\n")

    timer = threading.Timer(STUCK_TEARDOWN_SECONDS, report)
    timer.daemon = True
    timer.start()
