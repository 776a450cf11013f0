"""`/api/bulk-commands/`: choose meters (ids, a grid subtree, the meter list's filter), see the
count, confirm it; above the threshold a second person approves; progress by state, pushed
over a websocket; cancel. Executed on the DLMS simulator over loopback where it runs."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from amisite.asgi import application
from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from loadcontrol import actions
from loadcontrol.models import BulkCommand, BulkState
from tests.collection.test_collection_api import _session_cookie
from tests.collection.test_command_queue import point_meter_at

pytestmark = pytest.mark.django_db(transaction=True)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def threshold(settings):
    settings.AMI_COMMAND_APPROVAL_THRESHOLD = 1
    return 1


def test_a_subtree_is_counted_confirmed_and_approved_by_a_second_person(world, threshold):
    node = world.grid_a.transformer.pk
    operator = api(world.operator_a)
    preview = operator.post("/api/bulk-commands/preview/", {"node": node}, format="json")
    assert preview.status_code == 200, preview.content
    assert preview.json()["count"] == 2 and preview.json()["needs_approval"] is True
    assert sorted(preview.json()["sample"]) == sorted(m.serial for m in world.grid_a.meters)
    ask = {"node": node, "kind": "disconnect", "reason": "feeder works"}
    unconfirmed = operator.post("/api/bulk-commands/", ask, format="json")
    assert unconfirmed.status_code == 409 and unconfirmed.json()["count"] == 2
    wrong = operator.post("/api/bulk-commands/", {**ask, "count": 5}, format="json")
    assert wrong.status_code == 409
    assert not BulkCommand.objects.exists()  # nothing until the count is confirmed
    made = operator.post("/api/bulk-commands/", {**ask, "count": 2}, format="json")
    assert made.status_code == 201, made.content
    bulk = made.json()
    assert bulk["state"] == "pending" and bulk["size"] == 2
    assert bulk["target"]["by"] == "node" and "T1" in bulk["target"]["label"]
    url = f"/api/bulk-commands/{bulk['id']}/"
    assert not MeterCommand.objects.exists()
    assert operator.post(url + "approve/").status_code == 403  # the requester
    assert api(world.readonly_a).post(url + "approve/").status_code == 403  # an analyst
    assert api(world.engineer_a).post(url + "approve/").status_code == 403  # may not switch
    assert api(world.operator_b).post(url + "approve/").status_code == 404  # another region
    assert api(world.operator_b).get(url).status_code == 404
    approved = api(world.admin_a).post(url + "approve/")
    assert approved.status_code == 200 and approved.json()["decided_by"] == world.admin_a.username
    assert api(world.admin_a).post(url + "approve/").status_code == 409  # decided once
    progress = operator.get(url + "progress/").json()
    assert progress["counts"]["queued"] == 2 and progress["done"] == 0
    origins = set(MeterCommand.objects.values_list("origin", flat=True))
    assert origins == {f"bulk:{bulk['id']}"}
    cancelled = operator.post(url + "cancel/", {"reason": "works postponed"}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    progress = operator.get(url + "progress/").json()
    assert progress["counts"]["cancelled"] == 2 and progress["done"] == 2
    assert operator.post(url + "cancel/").status_code == 409
    listed = operator.get("/api/bulk-commands/", {"state": "cancelled"}).json()["results"]
    assert [row["id"] for row in listed] == [bulk["id"]]
    assert api(world.operator_b).get("/api/bulk-commands/").json()["results"] == []


def test_bad_selections_are_refused_and_nothing_is_made(world):
    operator = api(world.operator_a)
    foreign = world.grid_b.meters[0].pk
    cases = [
        ({"meters": [world.grid_a.meters[0].pk, foreign]}, "meters"),
        ({"node": world.grid_b.region.pk}, "node"),
        ({"filter": {"status": "no-such-status"}}, "filter"),
        ({"filter": {"colour": "red"}}, "filter"),
        ({"meters": [world.grid_a.meters[0].pk], "node": world.grid_a.region.pk}, "meters"),
        ({}, "meters"),
        ({"meters": ["x"]}, "meters"),
    ]
    for selection, field in cases:
        answer = operator.post(
            "/api/bulk-commands/",
            {**selection, "kind": "disconnect", "reason": "r", "count": 1},
            format="json",
        )
        assert answer.status_code == 400, (selection, answer.content)
        assert field in answer.json(), (selection, answer.json())
    no_reason = operator.post(
        "/api/bulk-commands/",
        {"meters": [world.grid_a.meters[0].pk], "kind": "disconnect", "count": 1},
        format="json",
    )
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    analyst = api(world.readonly_a).post(
        "/api/bulk-commands/",
        {"meters": [world.grid_a.meters[0].pk], "kind": "relay_read", "count": 1},
        format="json",
    )
    assert analyst.status_code == 403
    assert not BulkCommand.objects.exists() and not MeterCommand.objects.exists()


def test_a_filter_result_below_the_threshold_runs_on_the_meters(world, eager_celery):
    with DlmsFleet(make_meters(2), interface="wrapper").running_in_thread() as fleet:
        for meter, serial in zip(world.grid_a.meters, ("90000001", "90000002"), strict=True):
            point_meter_at(meter, fleet, serial)
        made = api(world.operator_a).post(
            "/api/bulk-commands/",
            {
                "filter": {"q": world.grid_a.meters[0].serial[:3], "status": "active"},
                "kind": "disconnect",
                "reason": "unpaid",
                "count": 2,
            },
            format="json",
        )
        assert made.status_code == 201, made.content
        assert made.json()["state"] == "approved"  # at or below the threshold: at once
        progress = api(world.operator_a).get(f"/api/bulk-commands/{made.json()['id']}/progress/")
    figures = progress.json()
    assert figures["counts"]["confirmed"] == 2 and figures["done"] == figures["total"] == 2
    assert fleet.state_of("90000001").control_state == fleet.state_of("90000002").control_state == 0
    assert set(MeterCommand.objects.values_list("state", flat=True)) == {CommandState.CONFIRMED}


@pytest.mark.asyncio
async def test_progress_is_pushed_to_watchers_in_scope(world, threshold):
    bulk = await sync_to_async(actions.request_bulk)(
        world.grid_a.meters, "disconnect", acting_user=world.operator_a, reason="works"
    )
    assert bulk.state == BulkState.PENDING
    sockets = {}
    for who in ("admin_a", "operator_b"):
        cookie = await sync_to_async(_session_cookie)(getattr(world, who))
        ws = WebsocketCommunicator(
            application,
            f"/ws/bulk-commands/{bulk.pk}/",
            headers=[
                (b"origin", b"http://localhost"),
                (b"host", b"localhost"),
                (b"cookie", cookie),
            ],
        )
        sockets[who] = ws, await ws.connect(timeout=5)
    ws, (connected, _code) = sockets["admin_a"]
    assert connected
    first = await ws.receive_json_from(timeout=5)
    assert first["bulk"]["state"] == "pending" and first["bulk"]["size"] == 2
    await sync_to_async(actions.approve_bulk)(bulk, acting_user=world.admin_a)
    pushed = await ws.receive_json_from(timeout=5)
    assert pushed["bulk"]["state"] == "approved" and pushed["bulk"]["counts"]["queued"] == 2
    await ws.disconnect()
    other, (connected, _code) = sockets["operator_b"]
    assert not connected or (await other.receive_output(timeout=5))["type"] == "websocket.close"


def test_a_pending_bulk_is_rejected_by_a_second_person_and_queues_nothing(world, threshold):
    operator = api(world.operator_a)
    ask = {"node": world.grid_a.transformer.pk, "kind": "disconnect", "reason": "works", "count": 2}
    bulk = operator.post("/api/bulk-commands/", ask, format="json").json()
    url = f"/api/bulk-commands/{bulk['id']}/reject/"
    assert operator.post(url, {"reason": "no"}, format="json").status_code == 403  # requester
    assert api(world.operator_b).post(url, {"reason": "no"}, format="json").status_code == 404
    rejected = api(world.admin_a).post(url, {"reason": "not during the peak"}, format="json")
    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["state"] == "rejected"
    assert api(world.admin_a).post(url, {"reason": "again"}, format="json").status_code == 409
    assert not MeterCommand.objects.exists()
