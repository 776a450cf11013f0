"""Real responses agree with /api/schema/: bodies (nullable fields included), content types.

Every GET operation of the schema is called with real data (the world's two regions, an
alarm still open, a sale without a station, a management order without a new base
date) as the superuser and as an operator of region A: a list, then the detail of the first
row it lists, and each answer with a 2xx status is validated by schemathesis against the
schema (`response_schema_conformance`, `content_type_conformance`).
"""

from __future__ import annotations

import re

import pytest
import schemathesis
import yaml
from django.core.wsgi import get_wsgi_application
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from accounts.tokens import issue_token
from tests.api_matrix import client_for
from tests.meters.alarms.helpers import make_rule, raise_alarm
from tests.meters.test_readings_api import recent_readings
from tests.test_api_fuzz import connection_kept_open
from tests.vending.conftest import make_vending
from vending.models import Sale

pytestmark = pytest.mark.django_db

CHECKS = [response_schema_conformance, content_type_conformance]
# GET operations answered as files: called with the query the schema names as required.
FILE_QUERIES = {"/api/meters/export/": {"format": "csv"}}


def seed(world):
    """Rows whose optional references are empty, as the probe saw them."""
    vend = make_vending(world)
    make_rule(world.org_a)
    raise_alarm(world.grid_a.meters[0])  # open: nobody acknowledged or cleared it
    recent_readings(world.grid_a.meters[0])  # /api/readings/, /api/events/ have rows
    paid = client_for(vend.integration_a).post(
        "/api/vending/payments/",
        {
            "meter_number": vend.account_a.meter_number,
            "amount": "50.00",
            "currency": "ZAR",
            "payment_reference": "BANK-9",
        },  # fmt: skip
        format="json",
        HTTP_IDEMPOTENCY_KEY="schema-check",
    )
    assert paid.status_code == 201, paid.content
    # A payment recorded before integration stations existed has no station.
    Sale.objects.filter(pk=paid.json()["id"]).update(station=None)
    ordered = client_for(world.admin_a).post(
        "/api/vending/management-tokens/",
        {"account": vend.account_a.pk, "purpose": "clear-credit", "reason": "swap"},
        format="json",
    )
    assert ordered.status_code == 201, ordered.content  # no new base date
    return vend


def get_operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "GET":
            yield operation


def first_id(body) -> int | None:
    rows = body.get("results") if isinstance(body, dict) else body
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        return rows[0].get("id")
    return None


@pytest.mark.parametrize("who", ["superuser", "operator_a"])
def test_real_responses_match_the_schema(world, who):
    seed(world)
    raw = client_for(world.superuser).get("/api/schema/")
    schema = schemathesis.openapi.from_dict(yaml.safe_load(raw.content))
    schema.app = get_wsgi_application()
    user = getattr(world, who)
    headers = {"Authorization": f"Token {issue_token(user)[1]}"}
    operations = {op.path: op for op in get_operations(schema)}
    ids: dict[str, int] = {}
    problems, skipped, validated = [], [], 0
    with connection_kept_open():
        # Lists first (no path parameters), then details with an id the list gave.
        for path in sorted(operations, key=lambda p: ("{" in p, p)):
            operation = operations[path]
            params = re.findall(r"{(\w+)}", path)
            if params:
                parent = path[: path.index("{")]
                if params != ["id"] or parent not in ids:
                    continue
                case = operation.Case(path_parameters={"id": ids[parent]})
            else:
                case = operation.Case(query=FILE_QUERIES.get(path))
            response = case.call(headers=headers)
            if not 200 <= response.status_code < 300:
                skipped.append(f"{response.status_code} {path}")
                continue
            if not params and path not in FILE_QUERIES:
                found = first_id(response.json())
                if found is not None:
                    ids[path] = found
            try:
                case.validate_response(response, checks=CHECKS)
                validated += 1
            except FailureGroup as exc:
                problems.append(f"GET {path}: " + "\n".join(str(e)[:400] for e in exc.exceptions))
    assert not problems, "\n\n".join(problems)
    assert validated > 30, f"only {validated} responses were validated: {skipped}"
