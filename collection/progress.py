"""Live run progress for the dashboard, pushed after commit through one function."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Count

from .commands.models import CommandState, MeterCommand
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


def _once_per_transaction(key: tuple, send) -> None:
    """`send` after the current transaction commits, once per `key` in that transaction.

    Looked up in Django's own queue, so a rolled-back transaction, whose callbacks Django
    drops, leaves nothing behind.
    """
    connection = transaction.get_connection()
    if any(
        getattr(entry[1], "ami_progress_key", None) == key for entry in connection.run_on_commit
    ):
        return
    send.ami_progress_key = key
    transaction.on_commit(send)


def commands_group(origin: str) -> str:
    """The channel group of the commands one origin ("bulk:12") asked for."""
    return "commands-" + origin.replace(":", "-")


def commands_snapshot(origin: str) -> dict:
    """How many commands of `origin` are in each state, and how many are finished."""
    counts = dict.fromkeys(CommandState.values, 0)
    rows = MeterCommand.objects.filter(origin=origin).values_list("state").annotate(n=Count("id"))
    for state, n in rows.order_by():
        counts[state] = n
    total = sum(counts.values())
    open_ = counts[CommandState.QUEUED] + counts[CommandState.SENT]
    return {"origin": origin, "total": total, "done": total - open_, "counts": counts}


def publish_commands(origin: str) -> None:
    """After commit, push the counts of `origin`'s commands to their watchers (once per
    transaction, however many of its commands changed in it)."""
    if not origin:
        return

    def send():
        async_to_sync(get_channel_layer().group_send)(
            commands_group(origin),
            {"type": "commands.progress", "progress": commands_snapshot(origin)},
        )

    _once_per_transaction(("commands", origin), send)


def publish_run(run_id: int) -> None:
    """After the current transaction commits, push the run's counts to its watchers.

    Called once per meter outcome; within one transaction the run is pushed once, with its
    counts as they stand at commit (a batch of hundreds of meters is one message, not
    hundreds).
    """

    def send():
        run = JobRun.objects.filter(pk=run_id).first()
        if run is None:
            return
        async_to_sync(get_channel_layer().group_send)(
            run_group(run_id), {"type": "run.progress", "run": run_snapshot(run)}
        )

    _once_per_transaction(("run", run_id), send)
