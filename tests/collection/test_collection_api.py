"""Collection doors: on-demand reads, job runs and run progress, each scoped."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from amisite.asgi import application
from collection.models import JobRun, ReadJob
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from tests.collection.test_on_demand import point_meter_at

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_on_demand_read_api(world, eager_celery):
    with DlmsFleet(make_meters(1), interface="wrapper").running_in_thread() as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        response = api(world.operator_a).post(
            f"/api/meters/{meter.pk}/read/", {"items": ["clock", "registers"]}, format="json"
        )
    assert response.status_code == 202, response.content
    run = JobRun.objects.get(pk=response.json()["id"])
    assert run.status == "succeeded"
    detail = api(world.operator_a).get(f"/api/runs/{run.pk}/").json()
    assert detail["succeeded"] == 1
    # Other organisation: the meter does not exist for them; read-only users may not read.
    assert (
        api(world.operator_b)
        .post(f"/api/meters/{meter.pk}/read/", {"items": ["clock"]}, format="json")
        .status_code
        == 404
    )
    assert (
        api(world.readonly_a)
        .post(f"/api/meters/{meter.pk}/read/", {"items": ["clock"]}, format="json")
        .status_code
        == 403
    )
    bad = api(world.operator_a).post(
        f"/api/meters/{meter.pk}/read/", {"items": ["all"]}, format="json"
    )
    assert bad.status_code == 400 and "items" in bad.json()


def test_run_job_now(world, eager_celery):
    with DlmsFleet(make_meters(2), interface="wrapper").running_in_thread() as fleet:
        point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        point_meter_at(world.grid_a.meters[1], fleet, "90000002")
        job = ReadJob.objects.create(
            name="now", organisation=world.org_a, items=["clock", "registers"]
        )
        response = api(world.operator_a).post(f"/api/read-jobs/{job.pk}/run/")
    assert response.status_code == 202, response.content
    run = JobRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.total, run.succeeded) == ("succeeded", 2, 2)
    results = api(world.operator_a).get(f"/api/runs/{run.pk}/results/").json()["results"]
    assert {r["serial"] for r in results} == {"90000001", "90000002"}
    assert api(world.operator_b).post(f"/api/read-jobs/{job.pk}/run/").status_code == 404


def test_runs_are_scoped(world):
    run_a = JobRun.objects.create(organisation=world.org_a, kind="on_demand")
    run_b = JobRun.objects.create(organisation=world.org_b, kind="on_demand")
    listed = {r["id"] for r in api(world.operator_a).get("/api/runs/").json()["results"]}
    assert run_a.pk in listed and run_b.pk not in listed
    assert api(world.operator_a).get(f"/api/runs/{run_b.pk}/").status_code == 404
    page = Client()
    page.force_login(world.operator_a)
    assert page.get(f"/runs/{run_b.pk}/").status_code == 404
    assert page.get(f"/runs/{run_a.pk}/").status_code == 200


def test_job_schedule_follows_the_job(world):
    client = api(world.engineer_a)
    created = client.post(
        "/api/read-jobs/",
        {
            "name": "nightly",
            "organisation": world.org_a.pk,
            "items": ["registers"],
            "crontab": "5 2 * * *",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    job = ReadJob.objects.get(pk=created.json()["id"])
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert (task.crontab.minute, task.crontab.hour, task.enabled) == ("5", "2", True)
    client.patch(f"/api/read-jobs/{job.pk}/", {"enabled": False}, format="json")
    assert not PeriodicTask.objects.get(pk=task.pk).enabled
    bad = client.patch(f"/api/read-jobs/{job.pk}/", {"crontab": "every night"}, format="json")
    assert bad.status_code == 400 and "crontab" in bad.json()
    assert client.delete(f"/api/read-jobs/{job.pk}/").status_code == 204
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    connections.close_all()
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.asyncio
async def test_run_progress_websocket_is_scoped(world):
    run_a = await JobRun.objects.acreate(organisation=world.org_a, kind="on_demand", total=3)
    for user, expected in ((world.operator_a, True), (world.operator_b, False)):
        cookie = await sync_to_async(_session_cookie)(user)
        ws = WebsocketCommunicator(
            application,
            f"/ws/runs/{run_a.pk}/",
            headers=[
                (b"origin", b"http://localhost"),
                (b"host", b"localhost"),
                (b"cookie", cookie),
            ],
        )
        connected, _ = await ws.connect(timeout=5)
        if expected:
            assert connected
            first = await ws.receive_json_from(timeout=5)
            assert first["run"]["total"] == 3
            await ws.disconnect()
        else:
            assert (
                not connected or (await ws.receive_output(timeout=5))["type"] == "websocket.close"
            )


def test_progress_is_pushed_once_per_transaction(world, monkeypatch):
    from django.db import transaction

    from collection import progress

    sent = []
    monkeypatch.setattr(progress, "async_to_sync", lambda fn: lambda group, msg: sent.append(group))
    run = JobRun.objects.create(organisation=world.org_a, kind="on_demand", total=3)
    with transaction.atomic():
        for _ in range(3):
            progress.publish_run(run.pk)
    assert sent == [f"run-{run.pk}"]
    try:
        with transaction.atomic():
            progress.publish_run(run.pk)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with transaction.atomic():
        progress.publish_run(run.pk)  # a rollback does not swallow later pushes
    assert sent == [f"run-{run.pk}", f"run-{run.pk}"]
