"""Live run progress for the dashboard, pushed after commit through one function."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .models import JobRun


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def run_snapshot(run) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "total": run.total,
        "done": run.done,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "values_stored": run.values_stored,
    }


def publish_run(run_id: int) -> None:
    """After the current transaction commits, push the run's counts to its watchers.

    Called once per meter outcome; within one transaction the run is pushed once, with its
    counts as they stand at commit (a batch of hundreds of meters is one message, not
    hundreds).
    """
    connection = transaction.get_connection()
    # Already queued in this transaction? (Looked up in Django's own queue, so a rolled-back
    # transaction, whose callbacks Django drops, leaves nothing behind.)
    if any(getattr(entry[1], "ami_run_id", None) == run_id for entry in connection.run_on_commit):
        return

    def send():
        run = JobRun.objects.filter(pk=run_id).first()
        if run is None:
            return
        async_to_sync(get_channel_layer().group_send)(
            run_group(run_id), {"type": "run.progress", "run": run_snapshot(run)}
        )

    send.ami_run_id = run_id
    transaction.on_commit(send)
