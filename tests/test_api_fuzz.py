"""Schemathesis over /api/schema/ for every role: no request, however malformed, answers 5xx.

Every operation of the schema is called with cases generated from its parameters and
bodies (valid and invalid), as each role of tests/factories.py plus a vending clerk and an
anonymous caller, through Django's WSGI handler in this thread (the test's database
connection). Seeded (`derandomize`) and bounded: a few cases per operation and role, so
the whole run fits in CI. Each case runs in a savepoint that is rolled back, so one case's
writes or a failed statement never leak into the next.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import schemathesis
import yaml
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings

from accounts.tokens import issue_token
from tests.api_matrix import client_for
from tests.vending.conftest import make_vending

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CASES_PER_OPERATION = 2
ROLES = ("superuser", "admin_a", "engineer_a", "operator_a", "readonly_a", "customer")


class _Rollback(Exception):
    pass


def call_in_savepoint(case, headers):
    """Call the case and roll back whatever it wrote; returns (status, body excerpt)."""
    outcome = {}
    try:
        with transaction.atomic():
            response = case.call(headers=headers)
            outcome["status"] = response.status_code
            outcome["body"] = response.content[:300].decode("utf-8", "replace")
            raise _Rollback
    except _Rollback:
        pass
    return outcome["status"], outcome["body"]


def failures_for(operation, headers) -> list[str]:
    found: list[str] = []

    @settings(
        max_examples=CASES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case):
        status, body = call_in_savepoint(case, headers)
        if status >= 500:
            found.append(f"{status} {case.as_curl_command()}\n    {body}")

    check()
    return found


@contextmanager
def connection_kept_open():
    """The WSGI handler closes the connection around each request; the test's must stay
    open (Django's test client does the same, and reconnects after each of its requests)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(world):
    response = client_for(world.superuser).get("/api/schema/")
    assert response.status_code == 200
    schema = schemathesis.openapi.from_dict(yaml.safe_load(response.content))
    schema.app = get_wsgi_application()
    return schema


def callers(world):
    vend = make_vending(world)
    users = {name: getattr(world, name) for name in ROLES}
    users["clerk_a"] = vend.clerk_a
    customer = users.pop("customer")
    headers = {
        name: {"Authorization": f"Token {issue_token(user)[1]}"} for name, user in users.items()
    }
    # Customers get no API token (portal/door.py): they come with their portal session.
    browser = Client()
    browser.force_login(customer)
    headers["customer"] = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}
    headers["anonymous"] = {}
    return headers


def test_no_operation_answers_5xx_for_any_role(world, api_schema):
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50, "the schema lost its operations"
    with connection_kept_open():
        for role, headers in callers(world).items():
            for operation in operations:
                failures += [f"[{role}] {f}" for f in failures_for(operation, headers)]
    assert not failures, f"{len(failures)} 5xx answers:\n" + "\n".join(failures[:20])
