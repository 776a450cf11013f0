"""Bad input is a clear 400 and changes nothing (issue 12, item 11): one test per class.

Each class is decided at one place (amisite/badinput.py, the registry readers, the query
date bound); these are the requests a probe found answering 500.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ActivityLog, Organisation
from meters.models import GridNode, Meter

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def counts():
    return (Meter.objects.count(), ActivityLog.objects.exclude(action__endswith="denied").count())


@pytest.mark.parametrize("door", ["api", "page"])
def test_import_row_with_too_few_cells_is_a_row_error(world, door):
    text = (
        "serial,manufacturer,model,service_point\n"
        "NEW000001,Acme,AM550,NA-SP1\n"
        "NEW000002,Acme\n"  # model and service point missing
        "NEW000003\n"
    )
    upload = SimpleUploadedFile("meters.csv", text.encode(), content_type="text/csv")
    client = api(world.engineer_a) if door == "api" else page(world.engineer_a)
    before = counts()
    if door == "api":
        response = client.post("/api/meters/import/", {"file": upload})
        assert response.status_code == 400, response.content
        errors = response.json()["errors"]
        assert {(e["line"], e["message"]) for e in errors} >= {
            (3, "model: a value is required"),
            (4, "manufacturer: a value is required"),
        }
    else:
        response = client.post("/meters/import/", {"file": upload})
        assert response.status_code == 400
        assert "model: a value is required" in response.content.decode()
    assert counts() == before


@pytest.mark.parametrize(
    "url",
    [
        "/meters/?q=%00",
        "/meters/%00/",
        "/meters/NA000001%00/",
        "/api/meters/?search=%00",
        "/api/meters/?serial=a%00b",
        "/api/meters/%00/",
        "/reports/query/?q=%00",
        "/grid/?x%00=1",
        "/admin/meters/meter/?q=%00",
    ],
)
def test_nul_in_path_or_query_string_is_400(world, url):
    response = page(world.superuser).get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_idempotency_key_longer_than_its_column_is_400(world):
    from tests.vending.conftest import make_vending
    from vending.models import Sale

    vend = make_vending(world)
    body = {"meter_number": vend.account_a.meter_number, "amount": "10.00", "currency": "ZAR",
            "payment_reference": "BANK-LONG"}  # fmt: skip
    response = api(vend.integration_a).post(
        "/api/vending/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 101
    )
    assert response.status_code == 400, response.content
    assert "longer than 100" in response.json()["detail"]
    assert Sale.objects.count() == 0


@pytest.mark.parametrize("target", ["itself", "child"])
def test_organisation_moved_under_itself_or_its_child_is_400(world, target):
    child = Organisation.objects.create(name="North-East", code="ne", parent=world.org_a)
    parent = world.org_a if target == "itself" else child
    paths = dict(Organisation.objects.values_list("pk", "path"))
    response = api(world.superuser).patch(
        f"/api/organisations/{world.org_a.pk}/", {"parent": parent.pk}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "below itself" in json.dumps(response.json())
    assert dict(Organisation.objects.values_list("pk", "path")) == paths


def test_grid_node_moved_under_its_child_is_400(world):
    grid = world.grid_a
    paths = dict(GridNode.objects.values_list("pk", "path"))
    response = api(world.superuser).patch(
        f"/api/grid-nodes/{grid.substation.pk}/", {"parent": grid.feeder.pk}, format="json"
    )
    assert response.status_code == 400, response.content
    assert dict(GridNode.objects.values_list("pk", "path")) == paths


@pytest.mark.parametrize(
    "query",
    [
        "start=0001-01-01&end=9999-12-31",
        "start=9999-12-30&end=9999-12-31",
        "start=0001-01-01T00:00:00%2B14:00",
        "end=9999-12-31T23:59:59-12:00",
        "start=2026-02-30",
    ],
)
def test_series_dates_at_the_ends_of_the_calendar_are_400(world, query):
    meter = world.grid_a.meters[0]
    response = api(world.operator_a).get(f"/api/meters/{meter.pk}/series/?{query}")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize(
    ("start", "end"), [("9999-12-30", "9999-12-31"), ("0001-01-01", "0001-01-02")]
)
def test_data_query_dates_near_the_ends_are_form_errors(world, start, end):
    params = {"channels": "1-0:1.29.0*255", "start": start, "end": end}
    client = page(world.operator_a)
    shown = client.get("/reports/query/", params)
    assert shown.status_code == 200
    assert "dates must lie between" in shown.content.decode()
    assert client.get("/reports/query/graph.json", params).status_code == 400
    before = counts()
    exported = client.post("/reports/query/export.csv?start=9999-12-30&end=9999-12-31")
    assert exported.status_code == 400
    assert counts() == before


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_body_is_400(world, depth):
    body = "[" * depth + "]" * depth
    before = counts()
    response = api(world.engineer_a).generic(
        "POST", "/api/meters/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "nested deeper" in response.json()["detail"]
    assert counts() == before


@pytest.mark.parametrize(
    "query",
    [
        "page_size=null",
        "page_size=0",
        "page_size=-5",
        "stauts=active",  # misspelt: it used to return the whole list as if filtered
        "serial=NA000001&colour=red",
        "ordering=no_such_field",
    ],
)
def test_api_refuses_unknown_and_invalid_query_parameters(world, query):
    response = api(world.operator_a).get(f"/api/meters/?{query}")
    assert response.status_code == 400, response.content


def test_declared_parameters_still_work(world):
    client = api(world.operator_a)
    listed = client.get("/api/meters/?status=active&page_size=1&ordering=-serial&format=json")
    assert listed.status_code == 200, listed.content
    assert listed.json()["count"] == 2 and len(listed.json()["results"]) == 1
    meter = world.grid_a.meters[0]
    assert client.get(f"/api/meters/{meter.pk}/series/?resolution=day").status_code == 200
    assert client.get(f"/api/meters/{meter.pk}/series/?resolutoin=day").status_code == 400
