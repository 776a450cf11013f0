"""Read windows: a failed session's frames through the API (scoped like the run page), a
first read honouring the job's backfill horizon, and re-reading a named period for a job or
a set of meters (API and page). Against the real simulator over loopback."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ActivityLog
from collection import actions
from collection.models import JobRun, ReadJob
from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters
from meters.store import IntervalReading
from meters.store.days import day_bounds
from tests.collection.test_invocation_counter import eager_celery  # noqa: F401
from tests.collection.test_on_demand import point_meter_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_failed_session_frames_through_the_api_in_scope_only(world):
    sims = make_meters(1)
    sims[0].fault = Fault("corrupt", at_reply=2)
    with DlmsFleet(sims, interface="wrapper").running_in_thread() as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        run = actions.request_on_demand_read(meter, ["clock"], acting_user=world.operator_a)
    (result,) = api(world.operator_a).get(f"/api/runs/{run.pk}/results/").json()["results"]
    assert result["status"] == "failed" and result["frames"]
    assert {f["direction"] for f in result["frames"]} == {"tx", "rx"}
    first = result["frames"][0]
    assert bytes.fromhex(first["data"]) and first["at"] <= result["frames"][-1]["at"]
    # Organisation B sees no such run, as on the page.
    assert api(world.operator_b).get(f"/api/runs/{run.pk}/results/").status_code == 404


def _job(world, **extra):
    return ReadJob.objects.create(
        name="job", organisation=world.org_a, items=["profile"], retries=0, **extra
    )


def test_a_first_read_honours_the_backfill_horizon(world):
    with DlmsFleet(make_meters(1), interface="wrapper").running_in_thread() as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        job = _job(world, backfill_days=3)
        job.meters.add(meter)
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
    assert run.status == "succeeded"
    first = IntervalReading.objects.filter(meter=meter).order_by("ts").first().ts
    # The job's window is the last day; a never-read meter starts backfill_days before it.
    assert first == run.since - timedelta(days=3)


def test_reread_a_named_period_for_a_job_and_for_meters(world):
    with DlmsFleet(make_meters(2), interface="wrapper").running_in_thread() as fleet:
        a = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        b = point_meter_at(world.grid_a.meters[1], fleet, "90000002")
        job = _job(world)
        day = timezone.now().date() - timedelta(days=3)
        lo, hi = day_bounds(day)
        answer = api(world.operator_a).post(
            f"/api/read-jobs/{job.pk}/reread/",
            {"since": day.isoformat(), "until": day.isoformat()},
            format="json",
        )
        assert answer.status_code == 202, answer.content
        run = JobRun.objects.get(pk=answer.json()["id"])
        assert (run.kind, run.status, run.since, run.until) == ("reread", "succeeded", lo, hi)
        for meter in (a, b):
            stamps = set(IntervalReading.objects.filter(meter=meter).values_list("ts", flat=True))
            # The whole local day (and the capture at its start), nothing else.
            want = {lo + timedelta(minutes=15 * k) for k in range(97)}
            assert stamps == want
        entry = ActivityLog.objects.get(action="reread_period")
        assert entry.changes["since"] == lo.isoformat()
        # A set of meters: the same period again writes nothing new (merge rules).
        again = api(world.operator_a).post(
            "/api/rereads/",
            {"meters": [a.pk], "since": lo.isoformat(), "until": hi.isoformat()},
            format="json",
        )
        assert again.status_code == 202, again.content
        assert IntervalReading.objects.filter(meter=a).count() == 97
        # Out of scope meters are absent; bad periods are a clear 400.
        assert (
            api(world.operator_b)
            .post(
                "/api/rereads/",
                {"meters": [a.pk], "since": "2026-01-01", "until": "2026-01-02"},
                format="json",
            )
            .status_code
            == 404
        )
        future = (timezone.now() + timedelta(days=2)).date().isoformat()
        bad = api(world.operator_a).post(
            f"/api/read-jobs/{job.pk}/reread/", {"since": future, "until": future}, format="json"
        )
        assert bad.status_code == 400 and "future" in bad.json()["since"][0]
        assert (
            api(world.readonly_a)
            .post(
                f"/api/read-jobs/{job.pk}/reread/",
                {"since": "2026-01-01", "until": "2026-01-01"},
                format="json",
            )
            .status_code
            == 403
        )
        # The page: the job list's re-read form.
        page = Client()
        page.force_login(world.operator_a)
        other = (day - timedelta(days=1)).isoformat()
        response = page.post(f"/jobs/{job.pk}/reread/", {"since": other, "until": other})
        assert response.status_code == 302 and "/runs/" in response["Location"]
    lo2, hi2 = day_bounds(date.fromisoformat(other))
    assert IntervalReading.objects.filter(meter=a, ts__gt=lo2, ts__lte=hi2).count() == 96
