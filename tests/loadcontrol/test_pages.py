"""The meter page's relay panel (a disconnect is confirmed first) and the command list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from tests.collection.test_command_queue import point_meter_at

pytestmark = pytest.mark.django_db(transaction=True)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_disconnect_from_the_meter_page_is_confirmed_first(world, eager_celery):
    with DlmsFleet(make_meters(1), interface="wrapper").running_in_thread() as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        operator = browser(world.operator_a)
        page = operator.get(f"/meters/{meter.serial}/").content.decode()
        assert 'id="relay-disconnect"' in page and 'id="relay-connect"' in page
        url = f"/meters/{meter.serial}/command/"
        asked = operator.post(url, {"kind": "disconnect", "reason": "unpaid"})
        assert asked.status_code == 200 and 'id="confirm-disconnect"' in asked.content.decode()
        assert not MeterCommand.objects.exists()  # nothing until confirmed
        done = operator.post(url, {"kind": "disconnect", "reason": "unpaid", "confirmed": "yes"})
        assert done.status_code == 302
    command = MeterCommand.objects.get()
    assert command.state == CommandState.CONFIRMED, command.error
    assert command.requested_by == world.operator_a and command.reason == "unpaid"
    page = operator.get(f"/meters/{meter.serial}/").content.decode()
    assert "Disconnect supply" in page and "Confirmed" in page


def test_ready_for_reconnection_from_the_meter_page_is_confirmed_first(world, eager_celery):
    with DlmsFleet(make_meters(1), interface="wrapper").running_in_thread() as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        operator = browser(world.operator_a)
        assert 'id="relay-ready"' in operator.get(f"/meters/{meter.serial}/").content.decode()
        url = f"/meters/{meter.serial}/command/"
        asked = operator.post(url, {"kind": "ready_for_reconnection", "reason": "paid"})
        text = asked.content.decode()
        assert 'id="confirm-disconnect"' in text and "customer presses" in text
        assert 'value="ready_for_reconnection"' in text
        assert not MeterCommand.objects.exists()
        operator.post(url, {"kind": "ready_for_reconnection", "reason": "paid", "confirmed": "yes"})
        assert fleet.state_of("90000001").control_state == 2
    command = MeterCommand.objects.get()
    assert command.state == CommandState.CONFIRMED, command.error


def test_an_analyst_sees_the_commands_but_has_no_buttons(world):
    meter = world.grid_a.meters[0]
    analyst = browser(world.readonly_a)
    page = analyst.get(f"/meters/{meter.serial}/").content.decode()
    assert 'id="relay-control"' in page and 'id="relay-disconnect"' not in page
    answer = analyst.post(
        f"/meters/{meter.serial}/command/",
        {"kind": "disconnect", "reason": "x", "confirmed": "yes"},
    )
    assert answer.status_code == 403
    assert not MeterCommand.objects.exists()


def test_a_foreign_meter_cannot_be_commanded(world):
    meter = world.grid_b.meters[0]
    answer = browser(world.operator_a).post(
        f"/meters/{meter.serial}/command/", {"kind": "relay_read"}
    )
    assert answer.status_code == 404


def test_the_command_list_filters_and_pages(world):
    meters = world.grid_a.meters
    for n in range(55):
        MeterCommand.objects.create(
            organisation=meters[0].organisation,
            meter=meters[n % 2],
            kind="disconnect" if n % 5 else "connect",
            state="failed" if n == 3 else "queued",
            expires_at=timezone.now() + timedelta(hours=1),
        )
    operator = browser(world.operator_a)
    first = operator.get("/commands/").content.decode()
    assert "page 1 of 2" in first
    failed = operator.get("/commands/", {"state": "failed"}).content.decode()
    assert failed.count("<tr><td>") == 1
    connects = operator.get("/commands/", {"kind": "connect", "meter": meters[0].serial})
    assert connects.content.decode().count("<tr><td>") == 6  # n = 0, 10, ..., 50
    assert browser(world.operator_b).get("/commands/").content.decode().count("<tr><td>") == 0
    assert operator.get("/commands/", {"state": "bogus", "page": "2"}).status_code == 200
