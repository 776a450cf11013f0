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
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


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
def _socket_work_done_before_the_flush(_django_db_marker):
    """Websocket work a test's sockets started may still run on the sockets' own threads
    when the test ends (a status snapshot of a socket already closed: its roll-up reads in
    a transaction). A transactional test's flush then TRUNCATEs beside it, and the two
    deadlocked (CI preview, 2026-12-06). Set up after the database fixture, so torn down
    before it: wait until the threads have finished what they were given."""
    yield
    import sys
    import threading

    websocket = sys.modules.get("amisite.websocket")
    if websocket is None:  # no socket in this process yet: nothing can be running
        return
    for executor in (websocket._status_thread, websocket._threads):
        workers = executor._max_workers
        gate = threading.Barrier(workers + 1)
        for _ in range(workers):  # every thread of the pool parked here: all earlier work done
            executor.submit(gate.wait, 30)
        gate.wait(30)
