"""Reads that may be stale go to the replica, everything else to the primary (amisite/dbrouter.py).

The end-to-end case runs the application in a process of its own with
`DATABASE_REPLICA_URL` set (this suite has one PostgreSQL server, so the "replica" is the same
database reached through its own connection): a report page's registry and store reads go
through the replica connection, while sessions, users and permissions, and every write, go
to the primary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection
from django.test import RequestFactory, override_settings

from accounts.models import User
from amisite import dbrouter
from meters.models import Meter
from tests.manage_shell import manage_shell

ROOT = Path(__file__).resolve().parents[2]


def marked_during(path: str, method: str = "GET") -> bool:
    seen = []
    middleware = dbrouter.ReplicaReadsMiddleware(
        lambda request: seen.append(dbrouter._reading_replica.get())
    )
    middleware(RequestFactory().generic(method, path))
    assert dbrouter._reading_replica.get() is False  # reset after the request
    return seen[0]


def test_only_reads_of_stale_tolerant_pages_are_marked(monkeypatch):
    with (
        monkeypatch.context() as patched,
        override_settings(AMI_REPLICA_PATHS=("/reports/", "/portal/usage/")),
    ):
        patched.setattr(dbrouter, "replica_configured", lambda: True)
        assert marked_during("/reports/billing/")
        assert marked_during("/portal/usage/", "HEAD")
        assert not marked_during("/reports/billing/", "POST")  # a form that writes
        assert not marked_during("/meters/")
        assert not marked_during("/portal/purchases/")  # a sale just made must show
    with override_settings(AMI_REPLICA_PATHS=("/reports/",)):
        assert not marked_during("/reports/billing/")  # no replica configured


def test_router_sends_only_marked_registry_reads_to_the_replica(monkeypatch):
    router = dbrouter.ReplicaRouter()
    with monkeypatch.context() as patched:
        patched.setattr(dbrouter, "replica_configured", lambda: True)
        assert router.db_for_read(Meter) is None
        token = dbrouter._reading_replica.set(True)
        try:
            assert router.db_for_read(Meter) == "replica"
            assert router.db_for_read(User) is None  # accounts: always the primary
            assert router.db_for_write(Meter) == "default"
        finally:
            dbrouter._reading_replica.reset(token)
    assert router.allow_migrate("replica", "meters") is False
    assert router.allow_migrate("default", "meters") is True


SCRIPT = """
import json
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from accounts.models import User

client = Client(HTTP_HOST="127.0.0.1")
client.force_login(User.objects.get(username={user!r}))
with CaptureQueriesContext(connections["default"]) as primary, \\
        CaptureQueriesContext(connections["replica"]) as replica:
    status = client.get("/reports/billing/").status_code
    other = client.get("/meters/").status_code
print(json.dumps({{"status": [status, other],
                  "primary": [q["sql"] for q in primary.captured_queries],
                  "replica": [q["sql"] for q in replica.captured_queries]}}))
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_report_page_reads_the_registry_from_the_replica(world):
    settings_dict = connection.settings_dict
    url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
        f"/{settings_dict['NAME']}"
    )
    out = manage_shell(
        SCRIPT.format(user=world.operator_a.username),
        DATABASE_URL=url,
        DATABASE_REPLICA_URL=url,
    )
    seen = json.loads(out.splitlines()[-1])
    assert seen["status"] == [200, 200]
    replica = " ".join(seen["replica"])
    primary = " ".join(seen["primary"])
    assert '"meters_meter"' in replica or '"meters_gridnode"' in replica  # the report's reads
    assert '"django_session"' in primary and '"django_session"' not in replica
    assert '"accounts_user"' not in replica
    # /meters/ is not a replica page: all its reads are the primary's.
    assert '"meters_meter"' in primary
    assert not any(
        q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for q in seen["replica"]
    )
