"""The home page and its websocket snapshot: scoped fleet figures, live after commit."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from accounts import roles
from amisite.asgi import application
from collection.choices import RunStatus
from collection.consumers import snapshot
from collection.models import JobRun
from collection.status import publish_status
from meters.alarms.engine import evaluate_events
from meters.models import CommStatus
from tests.factories import make_user
from tests.meters.alarms.helpers import POWER_DOWN, POWER_UP, T0, events, make_rule


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def health(status) -> dict:
    return {h["health"]: h["n"] for h in status["meters"]["health"]}


def make_alarm(world, meter, organisation, severity):
    from meters.alarms.models import Alarm, AlarmRule

    rule = AlarmRule.objects.create(name="r", organisation=organisation, kinds=["cover_open"])
    now = timezone.now()
    return Alarm.objects.create(
        rule=rule, meter=meter, organisation=organisation, kind="cover_open",
        severity=severity, first_event_at=now, last_event_at=now,
    )  # fmt: skip


@pytest.mark.django_db
def test_home_shows_only_own_fleet(world):
    a, b = world.grid_a, world.grid_b
    CommStatus.objects.create(meter=a.meters[0], last_success=timezone.now())
    CommStatus.objects.create(meter=b.meters[0], unreachable=True, consecutive_failures=3)
    make_alarm(world, a.meters[1], world.org_a, 40)
    make_alarm(world, b.meters[1], world.org_b, 40)
    JobRun.objects.create(organisation=world.org_b, status=RunStatus.RUNNING)
    response = client_for(world.operator_a).get("/")
    status = response.context["status"]
    assert status["meters"]["total"] == 2
    assert health(status) == {"ok": 1, "stale": 0, "unreachable": 0, "alarm": 1, "disconnected": 0}
    critical = [s for s in status["alarms"]["by_severity"] if s["label"] == "Critical"][0]
    assert critical["n"] == 1 and status["alarms"]["total"] == 1
    assert status["runs_running"] == 0 and status["runs"] == []
    html = response.content.decode()
    assert 'id="meters-total">2<' in html and "home-snapshot" in html
    # The superuser sees the whole fleet.
    everything = snapshot(world.superuser)
    assert everything["meters"]["total"] == 4 and everything["runs_running"] == 1


@pytest.mark.django_db
def test_home_shows_meters_off_in_open_outages(world):
    """The outages line counts meters with an open power failure (outage_summary), in scope."""
    make_rule(world.utility)
    evaluate_events(
        events(world.grid_a.meters[0], POWER_DOWN) + events(world.grid_b.meters[0], POWER_DOWN)
    )
    response = client_for(world.operator_a).get("/")
    assert response.context["status"]["outages"] == 1
    assert 'id="outages">1<' in response.content.decode()
    assert snapshot(world.superuser)["outages"] == 2
    evaluate_events(events(world.grid_a.meters[0], POWER_UP, start=T0 + timedelta(minutes=5)))
    assert snapshot(world.operator_a)["outages"] == 0
    clerk = make_user("clerk-a", world.org_a, roles.VENDING_CLERK)
    assert snapshot(clerk)["outages"] is None  # may not see alarms


@pytest.mark.django_db
def test_reads_today_are_counted(world):
    from collection.choices import ResultStatus
    from collection.models import MeterReadResult

    run = JobRun.objects.create(organisation=world.org_a, status=RunStatus.SUCCEEDED)
    now = timezone.now()
    for meter, status in zip(
        world.grid_a.meters, (ResultStatus.OK, ResultStatus.FAILED), strict=True
    ):
        MeterReadResult.objects.create(run=run, meter=meter, status=status, finished_at=now)
    today = snapshot(world.operator_a)["today"]
    assert today == {"ok": 1, "failed": 1, "success_rate": 50.0}
    assert snapshot(world.operator_b)["today"]["ok"] == 0


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    connections.close_all()
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(cookie: bytes) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, "/ws/status/", headers=headers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_websocket_snapshot_is_scoped_and_refreshes_after_commit():
    from tests.factories import make_world

    world = await sync_to_async(make_world)()
    ws = communicator(await sync_to_async(cookie_for)(world.operator_a))
    connected, _ = await ws.connect(timeout=5)
    assert connected
    first = (await ws.receive_json_from(timeout=5))["status"]
    assert first["meters"]["total"] == 2 and health(first)["unreachable"] == 0

    def meter_goes_unreachable():
        with transaction.atomic():
            CommStatus.objects.create(
                meter=world.grid_a.meters[0], unreachable=True, consecutive_failures=3,
                last_attempt=timezone.now() - timedelta(minutes=1),
            )  # fmt: skip
            publish_status({"changed": "comm_status"})

    await sync_to_async(meter_goes_unreachable)()
    forwarded = await ws.receive_json_from(timeout=5)
    assert forwarded == {"type": "status", "status": {"changed": "comm_status"}}
    refreshed = (await ws.receive_json_from(timeout=5))["status"]
    assert health(refreshed)["unreachable"] == 1 and refreshed["meters"]["total"] == 2
    await ws.disconnect()
