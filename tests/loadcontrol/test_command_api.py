"""`/api/commands/`: operators switch supply through the queue, analysts never command, a
foreign organisation's meter does not exist, bad input is a 400. Executed on the DLMS
simulator over loopback."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from meters.models import CommStatus
from tests.collection.test_command_queue import point_meter_at

pytestmark = pytest.mark.django_db(transaction=True)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def fleet():
    with DlmsFleet(make_meters(1), interface="wrapper").running_in_thread() as running:
        yield running


def test_an_operator_disconnects_and_the_meter_confirms(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    response = api(world.operator_a).post(
        "/api/commands/",
        {"meter": meter.pk, "kind": "disconnect", "reason": "meter tampering", "emergency": True},
        format="json",
    )
    assert response.status_code == 202, response.content
    command = MeterCommand.objects.get(pk=response.json()["id"])
    assert command.state == CommandState.CONFIRMED, command.error
    assert command.priority == 9 and command.reason == "meter tampering"
    assert CommStatus.objects.get(meter=meter).relay_state == "disconnected"
    listed = api(world.operator_a).get("/api/commands/", {"meter": meter.pk, "state": "confirmed"})
    assert [row["id"] for row in listed.json()["results"]] == [command.pk]
    assert listed.json()["results"][0]["answer"]["control_state"] == "disconnected"
    # Region B sees none of it.
    assert api(world.operator_b).get("/api/commands/").json()["results"] == []
    assert api(world.operator_b).get(f"/api/commands/{command.pk}/").status_code == 404


def test_an_analyst_never_commands(world):
    meter = world.grid_a.meters[0]
    for kind in ("disconnect", "relay_read"):
        response = api(world.readonly_a).post(
            "/api/commands/", {"meter": meter.pk, "kind": kind, "reason": "x"}, format="json"
        )
        assert response.status_code == 403
    assert api(world.readonly_a).get("/api/commands/").status_code == 200
    assert not MeterCommand.objects.exists()


def test_an_engineer_reads_the_relay_but_does_not_switch_it(world):
    meter = world.grid_a.meters[0]
    response = api(world.engineer_a).post(
        "/api/commands/", {"meter": meter.pk, "kind": "connect", "reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert not MeterCommand.objects.exists()


def test_a_foreign_meter_is_not_found(world):
    response = api(world.operator_a).post(
        "/api/commands/",
        {"meter": world.grid_b.meters[0].pk, "kind": "disconnect", "reason": "x"},
        format="json",
    )
    assert response.status_code == 404
    assert not MeterCommand.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"meter": ..., "kind": "disconnect", "reason": "x"},  # no meter
        {"meter": "abc", "kind": "disconnect", "reason": "x"},
        {"meter": 1, "kind": "explode", "reason": "x"},
        {"meter": None, "kind": "connect"},
        {"kind": "connect", "reason": ""},  # switching needs a reason
        {"kind": "connect", "reason": "x", "emergency": True},  # only disconnects are
        {"kind": "relay_read", "parameters": {"x": 1}},
        {"kind": "relay_read", "parameters": [1]},
    ],
)
def test_bad_requests_are_400(world, body):
    body = {"meter": world.grid_a.meters[0].pk, **body}
    if body["meter"] is ...:
        del body["meter"]
    response = api(world.operator_a).post("/api/commands/", body, format="json")
    assert response.status_code == 400, response.content
    assert not MeterCommand.objects.exists()


def test_cancel_a_queued_command_once(world):
    meter = world.grid_a.meters[0]
    command = MeterCommand.objects.create(
        organisation=meter.organisation,
        meter=meter,
        kind="disconnect",
        expires_at="2099-01-01T00:00:00Z",
    )
    url = f"/api/commands/{command.pk}/cancel/"
    assert api(world.operator_b).post(url, {}, format="json").status_code == 404
    assert api(world.readonly_a).post(url, {}, format="json").status_code == 403
    response = api(world.operator_a).post(url, {"reason": "paid"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert api(world.operator_a).post(url, {}, format="json").status_code == 409


def test_customers_and_anonymous_get_nothing(world):
    meter = world.grid_a.meters[0]
    command = MeterCommand.objects.create(
        organisation=meter.organisation,
        meter=meter,
        kind="relay_read",
        expires_at="2099-01-01T00:00:00Z",
    )
    customer = api(world.customer)
    assert customer.get("/api/commands/").status_code == 403
    assert customer.get(f"/api/commands/{command.pk}/").status_code in (403, 404)
    assert customer.post(
        "/api/commands/", {"meter": meter.pk, "kind": "relay_read"}, format="json"
    ).status_code in (403, 404)
    assert APIClient().get("/api/commands/").status_code in (401, 403)
    assert MeterCommand.objects.count() == 1
