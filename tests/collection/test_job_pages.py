"""Read jobs as operators define them in the dashboard: scoped forms, schedule, run now."""

import pytest
from django.test import Client
from django_celery_beat.models import PeriodicTask

from accounts.models import ActivityLog
from collection.models import JobRun, ReadJob

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(world, **overrides):
    data = {
        "name": "North feeder nightly",
        "organisation": world.org_a.pk,
        "items": ["clock", "profile"],
        "grid_node": world.grid_a.feeder.pk,
        "crontab": "30 1 * * *",
        "window_minutes": 120,
        "backfill_days": 7,
        "batch_size": 100,
        "concurrency": 50,
        "retries": 2,
        "retry_backoff_s": 5,
        "clock_drift_limit_s": 30,
        "clock_max_adjust_s": 300,
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_engineer_creates_edits_and_deletes_a_job_with_its_schedule(world):
    client = client_for(world.engineer_a)
    response = client.post("/jobs/new/", form_data(world))
    assert response.status_code == 302, response.context["form"].errors
    job = ReadJob.objects.get(name="North feeder nightly")
    assert PeriodicTask.objects.get(pk=job.periodic_task_id).crontab.hour == "1"
    assert ActivityLog.objects.filter(action="create", object_id=str(job.pk)).exists()
    response = client.post(f"/jobs/{job.pk}/edit/", form_data(world, crontab="0 4 * * *"))
    assert response.status_code == 302
    assert PeriodicTask.objects.get(pk=job.periodic_task_id).crontab.hour == "4"
    assert client.get(f"/jobs/{job.pk}/delete/").status_code == 200  # confirmation first
    assert client.post(f"/jobs/{job.pk}/delete/").status_code == 302
    assert not ReadJob.objects.filter(pk=job.pk).exists()
    assert not PeriodicTask.objects.filter(name__startswith=f"read job {job.pk}:").exists()


def test_form_refuses_other_organisations_and_bad_schedules(world):
    client = client_for(world.engineer_a)
    response = client.post("/jobs/new/", form_data(world, grid_node=world.grid_b.feeder.pk))
    assert response.status_code == 200 and "grid_node" in response.context["form"].errors
    response = client.post("/jobs/new/", form_data(world, organisation=world.org_b.pk))
    assert "organisation" in response.context["form"].errors
    response = client.post("/jobs/new/", form_data(world, crontab="nightly"))
    assert "crontab" in response.context["form"].errors
    assert not ReadJob.objects.exists()


def test_other_organisation_and_read_only_users(world):
    job = ReadJob.objects.create(name="A", organisation=world.org_a)
    assert client_for(world.engineer_b).get(f"/jobs/{job.pk}/edit/").status_code == 404
    assert client_for(world.engineer_b).post(f"/jobs/{job.pk}/delete/").status_code == 404
    assert client_for(world.readonly_a).get(f"/jobs/{job.pk}/edit/").status_code == 403
    listing = client_for(world.operator_b).get("/jobs/")
    assert job not in listing.context["page_obj"]


def test_run_now_starts_a_run(world, settings):
    from amisite.celery import app

    job = ReadJob.objects.create(name="A", organisation=world.org_a, items=["clock"])
    app.conf.task_always_eager = False
    response = client_for(world.operator_a).post(f"/jobs/{job.pk}/run/")
    run = JobRun.objects.get(job=job)
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.total == 2 and run.kind == "manual"


def test_a_job_can_run_at_an_interval_instead_of_a_crontab(world):
    client = client_for(world.engineer_a)
    response = client.post("/jobs/new/", form_data(world, every_minutes=15))
    assert response.status_code == 302, response.context["form"].errors
    job = ReadJob.objects.get(name="North feeder nightly")
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert (task.interval.every, task.interval.period, task.crontab) == (15, "minutes", None)
    client.post(f"/jobs/{job.pk}/edit/", form_data(world, every_minutes=""))
    task.refresh_from_db()
    assert task.interval is None and task.crontab.hour == "1"


def test_every_n_minutes_needs_no_crontab_but_one_of_them_is_needed(world):
    client = client_for(world.engineer_a)
    response = client.post("/jobs/new/", form_data(world, crontab="", every_minutes=15))
    assert response.status_code == 302, response.context["form"].errors
    task = PeriodicTask.objects.get(pk=ReadJob.objects.get().periodic_task_id)
    assert task.interval.every == 15 and task.crontab is None
    neither = client.post("/jobs/new/", form_data(world, name="x", crontab="", every_minutes=""))
    assert "crontab" in neither.context["form"].errors


def test_checkboxes_sit_with_their_labels(world):
    html = client_for(world.engineer_a).get("/jobs/new/").content.decode()
    # Each checkbox is inside its own label (never a label on one line, the box far away).
    import re

    boxes = re.findall(r"<input[^>]*type=\"checkbox\"[^>]*>", html)
    inside = re.findall(r"<label class=\"inline\"[^>]*>\s*<input[^>]*type=\"checkbox\"", html)
    assert len(boxes) == len(inside) >= len(ReadJob._meta.get_field("items").default()) + 2
