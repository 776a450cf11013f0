"""Grid topology: roll-ups per node from aggregated queries, lazy branches, scoping."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from meters import views
from meters.choices import NodeKind
from meters.models import CommStatus, GridNode, Meter

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_tree_rolls_up_counts_and_health(world):
    a = world.grid_a
    CommStatus.objects.create(meter=a.meters[1], unreachable=True, consecutive_failures=3)
    page = client_for(world.operator_a).get("/grid/")
    roots = page.context["roots"]
    assert [r.code for r in roots] == [a.region.code]
    region = roots[0]
    assert region.rollup["total"] == 2 and region.rollup["unreachable"] == 1
    html = page.content.decode()
    assert a.transformer.code in html and world.grid_b.region.code not in html
    assert "1 unreachable" in html


def test_rollups_take_a_fixed_number_of_queries(world):
    """More nodes and meters, same queries: roll-ups are aggregated, not per node."""
    client = client_for(world.operator_a)
    client.get("/grid/")
    with CaptureQueriesContext(connection) as small:
        client.get("/grid/")
    a = world.grid_a
    for i in range(5):
        t = GridNode.objects.create(
            kind=NodeKind.TRANSFORMER, code=f"NA-T{i + 2}", name="T", parent=a.feeder,
            organisation=world.org_a,
        )  # fmt: skip
        sp = GridNode.objects.create(
            kind=NodeKind.SERVICE_POINT, code=f"NA-T{i + 2}-SP", name="SP", parent=t,
            organisation=world.org_a,
        )  # fmt: skip
        Meter.objects.create(
            serial=f"NAX{i}", meter_model=world.meter_model, service_point=sp,
            organisation=world.org_a,
        )  # fmt: skip
    with CaptureQueriesContext(connection) as big:
        page = client.get("/grid/")
    assert len(big) == len(small)
    assert page.context["roots"][0].rollup["total"] == 7


def test_children_endpoint_is_scoped(world):
    a, b = world.grid_a, world.grid_b
    client = client_for(world.operator_a)
    data = client.get(f"/grid/nodes/{a.transformer.pk}/children/").json()
    assert [n["code"] for n in data["nodes"]] == [sp.code for sp in a.service_points]
    assert all(n["meters"]["total"] == 1 for n in data["nodes"])
    feeder = client.get(f"/grid/nodes/{a.feeder.pk}/children/").json()
    assert feeder["nodes"][0]["has_children"] and feeder["nodes"][0]["meters"]["total"] == 2
    assert client.get(f"/grid/nodes/{b.transformer.pk}/children/").status_code == 404
    assert client_for(world.customer).get(f"/grid/nodes/{a.region.pk}/children/").status_code == 403


def test_large_grids_render_roots_only(world, monkeypatch):
    monkeypatch.setattr(views, "GRID_EAGER_LIMIT", 1)
    page = client_for(world.operator_a).get("/grid/")
    assert not page.context["eager"]
    html = page.content.decode()
    assert world.grid_a.region.code in html and world.grid_a.transformer.code not in html
    assert 'data-lazy="1"' in html
