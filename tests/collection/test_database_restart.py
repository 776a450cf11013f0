"""PostgreSQL restarts in the middle of a run's ingest: the run completes, no gap, no duplicate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from django.db import close_old_connections, connection

from accounts.models import Organisation
from collection import actions
from collection.models import JobRun, MeterReadResult, ReadJob
from collection.simulators.dlms_fleet import Fault, make_meters
from meters.store import IntervalReading
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import (
    check_store_matches_model,
    register_fleet,
    simulated_model,
)
from tests.collection.test_worker_crash import kill_group, start_worker, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.serial,  # restarts the PostgreSQL server: alone, after the parallel run
    pytest.mark.django_db(transaction=True),
]


def restart_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"],
        check=True,
        timeout=60,
        capture_output=True,
    )


def db_answers() -> bool:
    try:
        close_old_connections()
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


@pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None, reason="needs pg_ctlcluster (Debian PostgreSQL)"
)
def test_database_restart_during_a_run():
    from amisite.celery import app

    app.control.purge()
    org = Organisation.objects.create(name="Restart", code="restart")
    model = simulated_model(org)
    sims = make_meters(30)
    for s in sims:
        s.fault = Fault("late", delay_s=0.15)
    with fleet_thread(sims, interface="wrapper") as fleet:
        meters = register_fleet(fleet, sims, org, model)
        job = ReadJob.objects.create(
            name="restart",
            organisation=org,
            items=["clock", "registers", "profile"],
            batch_size=10,
            concurrency=10,
            retries=0,
        )
        worker = start_worker("restart")
        try:
            run = actions.start_run(job)
            wait_for(
                lambda: MeterReadResult.objects.filter(run=run, status="ok").exists(),
                90,
                "the first batch to be stored",
            )
            restart_postgres()  # the other batches are being read or ingested now
            wait_for(db_answers, 60, "PostgreSQL to answer again")
            wait_for(
                lambda: JobRun.objects.get(pk=run.pk).status != "running", 180, "the run to finish"
            )
        finally:
            kill_group(worker)
    run = JobRun.objects.get(pk=run.pk)
    assert (run.status, run.done, run.succeeded) == ("succeeded", 30, 30), run.error
    assert check_store_matches_model(meters, run) == 30 * 96 * 4
    stored = IntervalReading.objects.filter(meter__in=meters, ts__gt=run.since, ts__lte=run.until)
    assert stored.count() == 30 * 96
