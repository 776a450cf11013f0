"""Live run progress for the dashboard, pushed after commit through one function."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def run_snapshot(run) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "total": run.total,
        "done": run.done,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "values_stored": run.values_stored,
    }


def publish_run(run_id: int) -> None:
    """After the current transaction commits, push the run's counts to its watchers."""

    def send():
        from .models import JobRun

        run = JobRun.objects.filter(pk=run_id).first()
        if run is None:
            return
        async_to_sync(get_channel_layer().group_send)(
            run_group(run_id), {"type": "run.progress", "run": run_snapshot(run)}
        )

    transaction.on_commit(send)
