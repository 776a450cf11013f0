"""A read batch whose task raises an error nobody retries: its meters fail at once, with the
error, and the run's counts take them (real Celery worker, real Redis broker, PostgreSQL,
meters simulated over loopback). The error is PostgreSQL's own: a trigger the test puts on
the register table raises for one meter's values, so the batch's ingest fails as a corrupt
table or a broken constraint would."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import Organisation
from collection import actions
from collection.models import JobRun, MeterReadResult, ReadJob
from collection.simulators.dlms_fleet import make_meters
from meters.models import CommStatus
from meters.store import RegisterRead
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import register_fleet, simulated_model
from tests.collection.test_worker_crash import kill_group, start_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TRIGGER = """
CREATE FUNCTION ami_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.meter_id = {meter} THEN
        RAISE EXCEPTION 'test: register values of meter % refused', NEW.meter_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ami_test_refuse BEFORE INSERT ON {table}
    FOR EACH ROW EXECUTE FUNCTION ami_test_refuse();
"""


@pytest.fixture
def refusing_register_table():
    """Yields a function arming the trigger for one meter; dropped afterwards."""
    table = RegisterRead._meta.db_table

    def arm(meter_id: int) -> None:
        with connection.cursor() as cur:
            cur.execute(TRIGGER.format(meter=int(meter_id), table=table))

    yield arm
    with connection.cursor() as cur:
        cur.execute(f"DROP TRIGGER IF EXISTS ami_test_refuse ON {table}")
        cur.execute("DROP FUNCTION IF EXISTS ami_test_refuse()")


def test_a_batch_whose_task_raises_fails_its_meters_at_once(refusing_register_table):
    from amisite.celery import app

    app.control.purge()
    org = Organisation.objects.create(name="Batch error", code="batch-error")
    model = simulated_model(org)
    sims = make_meters(6)
    with fleet_thread(sims, interface="wrapper") as fleet:
        meters = register_fleet(fleet, sims, org, model)
        # Two batches: the first (meters 0-2) stores; the second (3-5) meets the trigger.
        refusing_register_table(meters[4].pk)
        job = ReadJob.objects.create(
            name="batch error",
            organisation=org,
            items=["clock", "registers"],
            batch_size=3,
            concurrency=3,
            retries=0,
            window_minutes=600,  # the expiry job is not what closes them
        )
        worker = start_worker("batch-error")
        try:
            run = actions.start_run(job)
            wait_for(
                lambda: JobRun.objects.get(pk=run.pk).status != "running",
                120,
                "the run to finish",
            )
        finally:
            kill_group(worker)
    run = JobRun.objects.get(pk=run.pk)
    assert (run.status, run.total, run.done, run.succeeded, run.failed) == (
        "partial",
        6,
        6,
        3,
        3,
    )
    results = {r.meter_id: r for r in MeterReadResult.objects.filter(run=run)}
    good, bad = [m.pk for m in meters[:3]], [m.pk for m in meters[3:]]
    assert {results[m].status for m in good} == {"ok"}
    for m in bad:
        r = results[m]
        assert (r.status, r.error_kind) == ("failed", actions.BATCH_ERROR)
        assert "(ProgrammingError)" in r.error and f"register values of meter {meters[4].pk}" in (
            r.error
        ), r.error
        assert r.finished_at is not None
    # Nothing of the failed batch was stored (one transaction); the good batch's was.
    stored = set(RegisterRead.objects.values_list("meter_id", flat=True))
    assert stored == set(good)
    # The meters were not at fault: their comm status counts no failure.
    assert not CommStatus.objects.filter(meter_id__in=bad, consecutive_failures__gt=0).exists()
