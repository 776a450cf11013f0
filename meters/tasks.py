"""Celery tasks of the meters app: thin wrappers around the store's maintenance."""

from __future__ import annotations

from celery import shared_task

from .alarms import tasks as alarm_tasks  # noqa: F401  (registers the alarm tasks)
from .store import partitions


@shared_task(name="meters.maintain_partitions", ignore_result=True)
def maintain_partitions(months_ahead: int = 2) -> dict:
    """Create the coming months' interval partitions; detach those past the retention."""
    created = partitions.ensure_partitions(months_ahead=months_ahead)
    detached = partitions.detach_old_partitions()
    return {"created": created, "detached": detached}
