"""A start that failed half way leaves no damage: open runs close at once, reads resume, and a
run that finishes late never overwrites a meter's newer success."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from collection import actions
from collection.choices import ResultStatus, RunStatus
from collection.models import JobRun, MeterReadResult, ReadJob
from meters.models import CommStatus

pytestmark = pytest.mark.django_db  # on_commit never fires: nothing reaches the broker


def make_job(world, name="north", **fields):
    fields.setdefault("organisation", world.org_a)
    return ReadJob.objects.create(name=name, window_minutes=60, **fields)


def test_a_run_left_open_by_a_dead_process_is_closed_at_start(world):
    job = make_job(world)
    run = actions.start_run(job)  # queued, then the whole system stopped
    meters = run.total
    first = MeterReadResult.objects.filter(run=run).order_by("pk").first()
    MeterReadResult.objects.filter(pk=first.pk).update(status=ResultStatus.RUNNING)  # mid-read
    call_command("expire_runs", "--interrupted")  # make run's start, minutes later
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    assert (run.done, run.failed) == (meters, meters)
    assert "Interrupted" in run.error
    kinds = set(run.results.values_list("status", "error_kind"))
    assert kinds == {(ResultStatus.FAILED, actions.INTERRUPTED)}
    # Nothing was tried: the meters' communication status is untouched.
    assert not CommStatus.objects.exists()


def test_the_next_start_reads_what_the_first_did_not(world):
    interrupted, never_ran, finished = (make_job(world, name) for name in ("a", "b", "c"))
    actions.start_run(interrupted)
    actions.expire_interrupted_runs()
    done = actions.start_run(finished)
    for meter_id in done.results.values_list("meter_id", flat=True):
        actions._finish_result(done, meter_id, ok=True)
    actions.finish_run_if_done(done.pk)
    before = set(JobRun.objects.values_list("pk", flat=True))

    call_command("load_demo", "--read-now")  # the database has data: the demo is not reloaded

    new = JobRun.objects.exclude(pk__in=before)
    assert sorted(new.values_list("job__name", flat=True)) == ["a", "b"]
    assert all(run.total == len(world.grid_a.meters) for run in new)
    before = set(JobRun.objects.values_list("pk", flat=True))
    call_command("load_demo", "--read-now")  # nothing was interrupted since: nothing to resume
    assert set(JobRun.objects.values_list("pk", flat=True)) == before


def test_a_run_expiring_late_does_not_overwrite_a_newer_success(world):
    job = make_job(world)
    meter = world.grid_a.meters[0]
    old = actions.start_run(job)
    JobRun.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(hours=2))
    new = actions.start_run(job)
    actions._finish_result(new, meter.pk, ok=True, drift=1.5)

    assert actions.expire_runs() == 1  # the old run's window closed after the new success
    result = MeterReadResult.objects.get(run=old, meter=meter)
    assert (result.status, result.error_kind) == (ResultStatus.FAILED, "WindowClosed")
    status = CommStatus.objects.get(meter=meter)
    assert (status.last_error, status.consecutive_failures, status.unreachable) == ("", 0, False)

    # A failure newer than the success still counts.
    newer = actions.start_run(job)
    actions._finish_result(newer, meter.pk, ok=False, kind="MeterTimeout", error="no answer")
    status.refresh_from_db()
    assert status.last_error == "MeterTimeout: no answer" and status.consecutive_failures == 1
