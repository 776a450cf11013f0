"""Celery tasks of the collection app: thin, idempotent wrappers around collection.actions."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from . import actions, concentrators, push_tasks  # noqa: F401  (registers handle_push)
from .commands import actions as commands
from .health import record_heartbeat
from .models import ReadJob

log = logging.getLogger(__name__)


@shared_task(name="collection.run_read_job", acks_late=True)
def run_read_job(job_id: int) -> int | None:
    """Beat entry point: start a run of one job (a disabled or deleted job does nothing)."""
    job = ReadJob.objects.filter(pk=job_id, enabled=True).first()
    if job is None:
        return None
    return actions.start_run(job).pk


class ReadBatchTask(Task):
    """A batch whose task fails for good (an unexpected error, or the database errors'
    retries spent) fails its open meters at once, with the error (`actions.fail_batch`).
    A killed worker process is not a failure here: the broker hands the batch out again."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        run_id, meter_ids = (list(args) + [kwargs.get("run_id"), kwargs.get("meter_ids")])[:2]
        try:
            actions.fail_batch(run_id, meter_ids, exc)
        except Exception:  # the database itself may be what failed: the expiry job closes them
            log.exception("run %s: the failed batch's meters could not be closed", run_id)


@shared_task(
    base=ReadBatchTask,
    name="collection.read_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    # A database restart mid-batch: try again (the batch is idempotent) rather than drop it.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def read_batch_task(run_id: int, meter_ids: list[int]) -> dict:
    """Read one batch; a redelivery after a crash re-reads only what is unfinished."""
    return actions.process_batch(run_id, meter_ids)


@shared_task(name="collection.expire_runs")
def expire_runs_task() -> int:
    return actions.expire_runs()


@shared_task(name="collection.probe_concentrators")
def probe_concentrators_task() -> list[dict]:
    """Beat, every 15 minutes: each concentrator's own status and the meters it reports."""
    return [r.as_dict() for r in concentrators.probe_all()]


@shared_task(name="collection.heartbeat", ignore_result=True)
def heartbeat_task() -> None:
    """Sent by beat every minute; the status page shows when it last ran."""
    record_heartbeat()


@shared_task(
    name="collection.execute_commands",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def execute_commands_task(self, meter_id: int) -> dict:
    """One meter's queued commands in one session; a redelivery sends nothing twice."""
    return commands.execute_commands(meter_id, claim=self.request.id or f"eager-{meter_id}")


@shared_task(
    name="collection.execute_command_batch",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def execute_command_batch_task(self, meter_ids: list[int]) -> dict:
    """Many meters' queued commands, their sessions concurrent; a redelivery sends nothing
    twice (the claim is the task id)."""
    claim = self.request.id or f"eager-batch-{min(meter_ids, default=0)}"
    return commands.execute_command_batch(meter_ids, claim=claim)


@shared_task(name="collection.requeue_lost_commands")
def requeue_lost_commands_task() -> int:
    return commands.requeue_lost_commands()


@shared_task(name="collection.expire_commands")
def expire_commands_task() -> int:
    return commands.expire_commands()
