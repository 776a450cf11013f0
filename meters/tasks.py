"""Celery tasks of the meters app: thin wrappers around the store's maintenance."""

from __future__ import annotations

from datetime import UTC, datetime

from celery import shared_task

from .alarms import tasks as alarm_tasks  # noqa: F401  (registers the alarm tasks)
from .store import compaction, partitions, rollups


@shared_task(name="meters.maintain_partitions", ignore_result=True)
def maintain_partitions(months_ahead: int = 2) -> dict:
    """Create the coming months' interval partitions; detach those past the retention."""
    created = partitions.ensure_partitions(months_ahead=months_ahead)
    detached = partitions.detach_old_partitions()
    keep = partitions.retention_months()
    if keep is not None:
        oldest_kept = partitions.add_months(partitions.month_of(datetime.now(UTC)), -keep)
        detached += compaction.detach_old(oldest_kept)
    return {"created": created, "detached": detached}


@shared_task(name="meters.compact_store", ignore_result=True, acks_late=True)
def compact_store() -> list[dict]:
    """Pack closed months one row per meter, group and day (`meters.store.compaction`).

    Each chunk is its own transaction, so a killed run is simply run again (redelivered
    with late acks): chunks done stay done, the rest are picked up. A chunk also fills the
    hourly rollup of its days where it is missing (`rollups.fill_missing_hours`)."""
    return compaction.compact_closed(after_chunk=rollups.fill_missing_hours)
