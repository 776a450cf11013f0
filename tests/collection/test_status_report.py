"""The system status page and the collection success report, scoped per organisation."""

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone

from collection.health import record_heartbeat
from collection.models import JobRun, MeterReadResult, ReadJob
from meters.models import CommStatus

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_run(world, org, grid, ok: int, failed: int):
    job = ReadJob.objects.create(name=f"{org.code} daily", organisation=org)
    run = JobRun.objects.create(job=job, organisation=org, status="partial", total=ok + failed)
    now = timezone.now()
    for i, meter in enumerate(grid.meters[: ok + failed]):
        MeterReadResult.objects.create(
            run=run, meter=meter, status="ok" if i < ok else "failed", finished_at=now
        )
    return run


def test_status_page_shows_counts_and_heartbeat(world):
    make_run(world, world.org_a, world.grid_a, ok=1, failed=1)
    CommStatus.objects.create(
        meter=world.grid_a.meters[1], unreachable=True, consecutive_failures=3
    )
    CommStatus.objects.create(
        meter=world.grid_b.meters[0], unreachable=True, consecutive_failures=3
    )
    record_heartbeat()
    page = client_for(world.operator_a).get("/status/")
    assert page.status_code == 200
    status = page.context["status"]
    assert status["today"] == {"ok": 1, "failed": 1, "success_rate": 50.0}
    assert status["unreachable"] == 1  # organisation B's meter is not counted
    assert status["last_beat"] is not None
    assert set(status["queues"]) == {"collect", "default"}


def test_collection_report_per_job_and_feeder_with_csv(world):
    make_run(world, world.org_a, world.grid_a, ok=1, failed=1)
    make_run(world, world.org_b, world.grid_b, ok=2, failed=0)
    client = client_for(world.operator_a)
    rows = client.get("/reports/collection/").context["rows"]
    assert [(r["group"], r["scheduled"], r["ok"], r["missing"], r["rate"]) for r in rows] == [
        ("north daily", 2, 1, 1, 50.0)
    ]
    feeders = client.get("/reports/collection/", {"group": "feeder"}).context["rows"]
    assert [r["group"] for r in feeders] == [world.grid_a.feeder.code]
    response = client.get("/reports/collection/", {"format": "csv", "group": "model"})
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0][:3] == ["day", "model", "scheduled"] and len(lines) == 2
    assert "south" not in response.content.decode()


def test_customer_cannot_see_status(world):
    assert client_for(world.customer).get("/status/").status_code == 403
