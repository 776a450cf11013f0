"""Map data: scoped points and server-side cells, filters, health colours, assets."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from meters import map_views
from meters.models import CommStatus, Meter

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def placed(world):
    """Meters of both organisations placed near each other, in London."""
    for grid, base in ((world.grid_a, Decimal("51.50")), (world.grid_b, Decimal("51.51"))):
        for i, meter in enumerate(grid.meters):
            meter.latitude = base + Decimal(i) / 1000
            meter.longitude = Decimal("-0.12") + Decimal(i) / 1000
            meter.save()
        grid.concentrator.latitude, grid.concentrator.longitude = base, Decimal("-0.121")
        grid.concentrator.save()
        grid.transformer.latitude, grid.transformer.longitude = base, Decimal("-0.122")
        grid.transformer.save()
    return world


LONDON = {"bbox": "-0.2,51.4,0.0,51.6", "zoom": 14}


def test_points_are_scoped_and_coloured(placed):
    a = placed.grid_a
    now = timezone.now()
    CommStatus.objects.create(meter=a.meters[0], last_success=now - timedelta(hours=1))
    CommStatus.objects.create(meter=a.meters[1], unreachable=True, consecutive_failures=3)
    data = client_for(placed.operator_a).get("/map/data/", LONDON).json()
    assert data["mode"] == "points"
    health = {p["serial"]: p["health"] for p in data["points"]}
    assert health == {a.meters[0].serial: "ok", a.meters[1].serial: "unreachable"}
    assert [c["serial"] for c in data["concentrators"]] == [a.concentrator.serial]
    assert [t["code"] for t in data["transformers"]] == [a.transformer.code]
    assert data["detail_url"] == "/meters/SERIAL/"


def test_cells_count_only_own_meters(placed, monkeypatch):
    monkeypatch.setattr(map_views, "POINT_LIMIT", 1)
    data = client_for(placed.operator_a).get("/map/data/", {**LONDON, "zoom": 3}).json()
    assert data["mode"] == "cells" and data["points"] == []
    assert sum(c["n"] for c in data["cells"]) == 2 == data["total"]
    assert sum(sum(c["counts"].values()) for c in data["cells"]) == 2
    assert data["concentrators"] == [] and data["transformers"] == []  # too far out
    # The superuser sees both organisations in the same cells.
    everything = client_for(placed.superuser).get("/map/data/", {**LONDON, "zoom": 3}).json()
    assert everything["total"] == 4


def test_cells_below_cluster_zoom_read_no_point_rows(placed):
    client = client_for(placed.operator_a)
    zoom = map_views.CLUSTER_BELOW_ZOOM - 1
    with CaptureQueriesContext(connection) as below:
        data = client.get("/map/data/", {**LONDON, "zoom": zoom}).json()
    assert data["mode"] == "cells" and data["total"] == 2
    with CaptureQueriesContext(connection) as at:
        data = client.get("/map/data/", {**LONDON, "zoom": zoom + 1}).json()
    assert data["mode"] == "points" and len(data["points"]) == 2
    limit = f"LIMIT {map_views.POINT_LIMIT + 1}"
    assert not [q for q in below.captured_queries if limit in q["sql"]]
    assert [q for q in at.captured_queries if limit in q["sql"]]


def test_cells_split_by_zoom(placed, monkeypatch):
    monkeypatch.setattr(map_views, "POINT_LIMIT", 1)
    client = client_for(placed.superuser)
    far = client.get("/map/data/", {**LONDON, "zoom": 2}).json()
    # Zoomed right in on the meters (the cells also never outnumber ~32 x 24 per view).
    near = client.get("/map/data/", {"bbox": "-0.121,51.499,-0.117,51.513", "zoom": 18}).json()
    assert len(far["cells"]) == 1 and len(near["cells"]) == 4


def test_filters_and_bbox_apply(placed):
    a = placed.grid_a
    client = client_for(placed.operator_a)
    only = client.get("/map/data/", {**LONDON, "q": a.meters[1].serial}).json()
    assert [p["serial"] for p in only["points"]] == [a.meters[1].serial]
    assert client.get("/map/data/", {**LONDON, "status": "faulty"}).json()["points"] == []
    outside = client.get("/map/data/", {"bbox": "10,10,11,11", "zoom": 14}).json()
    assert outside["points"] == [] and outside["total"] == 0
    node = client.get("/map/data/", {**LONDON, "node": a.service_points[0].pk}).json()
    assert [p["serial"] for p in node["points"]] == [a.meters[0].serial]
    # The other organisation's node is not a filter one can borrow.
    borrowed = client.get("/map/data/", {**LONDON, "node": placed.grid_b.region.pk}).json()
    assert {p["serial"] for p in borrowed["points"]} == {m.serial for m in a.meters}


def test_extent_is_scoped(placed):
    data = client_for(placed.operator_a).get("/map/data/", {"extent": 1}).json()
    assert data["extent"] == [-0.12, 51.5, -0.119, 51.501]


def test_open_alarm_colours_the_meter(placed):
    from meters.alarms.models import Alarm, AlarmRule

    meter = placed.grid_a.meters[0]
    rule = AlarmRule.objects.create(name="Tamper", organisation=placed.org_a, kinds=["cover_open"])
    now = timezone.now()
    Alarm.objects.create(
        rule=rule,
        meter=meter,
        organisation=placed.org_a,
        kind="cover_open",
        severity=40,
        first_event_at=now,
        last_event_at=now,
    )
    data = client_for(placed.operator_a).get("/map/data/", LONDON).json()
    assert {p["serial"]: p["health"] for p in data["points"]}[meter.serial] == "alarm"


def test_bad_parameters_fall_back(placed):
    client = client_for(placed.operator_a)
    data = client.get("/map/data/", {"bbox": "nan,x", "zoom": "abc"}).json()
    assert data["bbox"] == [-180.0, -85.0, 180.0, 85.0] and data["zoom"] == 0


def test_map_page_and_access(placed):
    assert client_for(placed.operator_a).get("/map/").status_code == 200
    assert client_for(placed.customer).get("/map/data/").status_code == 403
    assert Client().get("/map/data/").status_code == 302


def test_meters_without_place_are_left_out(placed):
    Meter.objects.filter(pk=placed.grid_a.meters[0].pk).update(latitude=None, longitude=None)
    data = client_for(placed.operator_a).get("/map/data/", LONDON).json()
    assert data["total"] == 1
