"""kill -9 of a Celery worker in the middle of a run, then a new worker: the run completes,
with no gap and no duplicate (real worker processes, real Redis broker, PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import Organisation
from collection import actions
from collection.models import JobRun, MeterReadResult, ReadJob
from collection.simulators import model as sim
from collection.simulators.dlms_fleet import Fault, make_meters
from meters.store import IntervalReading
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import (
    check_store_matches_model,
    register_fleet,
    simulated_model,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
VISIBILITY_S = 4


def database_url() -> str:
    s = connection.settings_dict
    host, port = s["HOST"] or "127.0.0.1", s["PORT"] or 5432
    return f"postgres://{s['USER'] or 'postgres'}@{host}:{port}/{s['NAME']}"


def start_worker(name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "test-only"),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "amisite",
            "worker",
            "-Q",
            "collect,default",
            "--concurrency",
            "1",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def meters_in_session(fleet) -> int:
    """How many simulated meters have been associated with (read, or being read)."""
    return sum(1 for state in list(fleet.states.values()) if state.sessions)


def unacked_older_than_visibility() -> bool:
    """The broker's newest unacknowledged task is older than the visibility timeout."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    stamps = [score for _tag, score in client.zrange("unacked_index", 0, -1, withscores=True)]
    return bool(stamps) and time.time() - max(stamps) > VISIBILITY_S


def unacked_none_or_older_than_visibility() -> bool:
    """Nothing the broker would hold back from a new worker: no unacknowledged task (the
    worker was killed between an acknowledgement and its next fetch) or only old ones."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    stamps = [score for _tag, score in client.zrange("unacked_index", 0, -1, withscores=True)]
    return not stamps or time.time() - max(stamps) > VISIBILITY_S


def test_killed_worker_mid_run_then_a_new_worker_completes_it():
    from amisite.celery import app

    app.control.purge()
    org = Organisation.objects.create(name="Crash", code="crash")
    model = simulated_model(org)
    sims = make_meters(24)
    for s in sims:
        s.fault = Fault("late", delay_s=0.25)  # slow enough to be caught mid-batch
    with fleet_thread(sims, interface="wrapper") as fleet:
        meters = register_fleet(fleet, sims, org, model)
        job = ReadJob.objects.create(
            name="crash",
            organisation=org,
            items=["clock", "registers", "profile"],
            batch_size=24,
            concurrency=4,
            retries=0,
        )
        first = start_worker("first")
        try:
            run = actions.start_run(job)
            # Wait until the batch is half read (its first meters done, the rest not), then
            # kill the worker outright.
            wait_for(
                lambda: MeterReadResult.objects.filter(run=run, status="running").exists(),
                60,
                "the batch to start",
            )
            wait_for(
                lambda: 4 < meters_in_session(fleet) < len(sims),
                60,
                "the first meters of the batch to be read",
            )
        finally:
            kill_group(first)
        assert JobRun.objects.get(pk=run.pk).status == "running"
        # The killed worker's task is unacknowledged: wait until the broker may hand it out
        # again (older than the visibility timeout), then start a new worker.
        wait_for(unacked_older_than_visibility, 30, "the unacknowledged task to become visible")
        second = start_worker("second")
        try:
            wait_for(
                lambda: JobRun.objects.get(pk=run.pk).status != "running", 120, "the run to finish"
            )
        finally:
            kill_group(second)
    run = JobRun.objects.get(pk=run.pk)
    assert (run.status, run.done, run.succeeded) == ("succeeded", 24, 24), run.error
    # The batch was picked up twice: once by the killed worker, once by the new one.
    assert set(MeterReadResult.objects.filter(run=run).values_list("deliveries", flat=True)) == {2}
    assert check_store_matches_model(meters, run) == 24 * 96 * 4
    # Exactly one row per (meter, group, interval): no duplicate, no gap.
    per_meter = IntervalReading.objects.filter(
        meter__in=meters, ts__gt=run.since, ts__lte=run.until
    ).count()
    assert per_meter == 24 * 96
    assert sim.completed_intervals(run.until) - sim.completed_intervals(run.since) == 96
