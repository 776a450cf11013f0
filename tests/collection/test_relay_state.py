"""The supply relay as last seen (`CommStatus.relay_state`), written by collection.

From a read of the disconnect control or from relay events (read or pushed), the newest
wins; the dashboard's "disconnected" health (map, grid, meter filter, home) is this state.
Reads go to a simulated DLMS meter over loopback whose relay is open.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from collection import actions
from collection.choices import RunStatus
from collection.consumers import snapshot
from collection.push_tasks import handle_push
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from collection.simulators.incidents import HOUR, REMOTE_DISCONNECTION, Incident, Script
from meters.filters import MeterFilter
from meters.models import CommStatus
from tests.collection.test_on_demand import point_meter_at

STANDARD_LOG = "0-0:99.98.0*255"
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def relay(meter) -> tuple[str, datetime | None]:
    status = CommStatus.objects.get(meter=meter)
    return status.relay_state, status.relay_state_at


def health_counts(user) -> dict:
    return {h["health"]: h["n"] for h in snapshot(user)["meters"]["health"]}


@pytest.fixture
def disconnected_fleet():
    """One meter, remotely disconnected 23 hours ago (its log says so, its relay is open)."""
    meters = make_meters(1)
    anchor = timezone.now().replace(microsecond=0)
    meters[0].script = Script(
        anchor, (Incident(REMOTE_DISCONNECTION, -23 * HOUR, push=False),), relay_connected=False
    )
    with DlmsFleet(meters, interface="wrapper").running_in_thread() as running:
        yield running, anchor


@pytest.mark.django_db(transaction=True)
def test_a_relay_read_shows_the_meter_disconnected(world, disconnected_fleet, eager_celery):
    fleet, _ = disconnected_fleet
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    assert health_counts(world.operator_a)["disconnected"] == 0
    before = timezone.now()
    run = actions.request_on_demand_read(meter, ["relay"], acting_user=world.operator_a)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.results.get().error
    state, at = relay(meter)
    assert state == "disconnected" and at >= before
    assert list(MeterFilter(world.operator_a, {"health": "disconnected"}).queryset()) == [meter]
    assert health_counts(world.operator_a)["disconnected"] == 1
    assert health_counts(world.operator_b)["disconnected"] == 0  # not B's meter
    client = Client()
    client.force_login(world.operator_a)
    page = client.get(f"/meters/{meter.serial}/").content.decode()
    assert '<dd id="relay-state">Disconnected <span' in page


@pytest.mark.django_db(transaction=True)
def test_a_relay_event_in_the_log_shows_the_meter_disconnected(
    world, disconnected_fleet, eager_celery
):
    fleet, anchor = disconnected_fleet
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    run = actions.request_on_demand_read(
        meter, ["events"], acting_user=world.operator_a, since=anchor - timedelta(days=2)
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.results.get().error
    assert relay(meter) == ("disconnected", anchor - timedelta(hours=23))
    assert health_counts(world.operator_a)["disconnected"] == 1


def push(meter, code: int, at: datetime) -> dict:
    event = {"ts": at.isoformat(), "code": code, "log": STANDARD_LOG, "data": []}
    return handle_push.run(meter.pk, [event])


@pytest.mark.django_db
def test_pushed_relay_events_newest_wins(world):
    meter = world.grid_a.meters[0]
    push(meter, 61, T0)  # remote disconnection
    assert relay(meter) == ("disconnected", T0)
    push(meter, 62, T0 + timedelta(hours=1))  # remote connection
    assert relay(meter) == ("connected", T0 + timedelta(hours=1))
    push(meter, 59, T0 + timedelta(minutes=30))  # an older event arriving late changes nothing
    push(meter, 61, T0)  # nor does a redelivered one
    assert relay(meter) == ("connected", T0 + timedelta(hours=1))
    push(meter, 1, T0 + timedelta(hours=2))  # power down: not a relay event
    assert relay(meter) == ("connected", T0 + timedelta(hours=1))
