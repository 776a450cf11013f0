"""Read-job schedules (crontab in the utility's time zone, or an interval) <-> beat rows."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction

FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def parse_crontab(text: str) -> dict[str, str]:
    """'15 1 * * *' -> beat's crontab fields; a clear ValueError for anything else."""
    from celery.schedules import crontab

    parts = (text or "").split()
    if len(parts) != 5:
        raise ValueError("a schedule is five fields: minute hour day-of-month month day-of-week")
    fields = dict(zip(FIELDS, parts, strict=True))
    try:
        crontab(**fields)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a valid schedule: {exc}") from None
    return fields


@transaction.atomic
def sync_schedule(job) -> None:
    """Create, update or disable the beat entry that starts this job's runs.

    A job runs on its crontab (in the utility's time zone) or, when `every_minutes` is
    set, at that interval.
    """
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    task = job.periodic_task
    if task is None:
        task = PeriodicTask(
            name=f"read job {job.pk}: {job.name}"[:200], task="collection.run_read_job"
        )
    if job.every_minutes:
        task.interval, _ = IntervalSchedule.objects.get_or_create(
            every=job.every_minutes, period=IntervalSchedule.MINUTES
        )
        task.crontab = None
    else:
        fields = parse_crontab(job.crontab)
        task.crontab, _ = CrontabSchedule.objects.get_or_create(
            timezone=settings.TIME_ZONE, **fields
        )
        task.interval = None
    task.args = json.dumps([job.pk])
    task.enabled = job.enabled
    task.queue = "default"
    task.save()
    if job.periodic_task_id != task.pk:
        type(job).objects.filter(pk=job.pk).update(periodic_task=task)
        job.periodic_task = task


def drop_schedule(job) -> None:
    if job.periodic_task_id:
        job.periodic_task.delete()


def line_batches(meter_ids: list[int], lines: dict[int, str], size: int) -> list[list[int]]:
    """Meter ids in batches of about `size`, every shared line's meters in one batch.

    A batch is one worker's event loop, so a line split over two batches would have two
    workers talking on it at once; kept whole, its sessions take turns (collection/reader.py).
    Lines are packed whole into batches (a line longer than `size` is a batch of its own);
    meters on no shared line fill batches as before, in id order.
    """
    size = max(1, size)
    by_line: dict[str, list[int]] = {}
    alone = []
    for pk in meter_ids:
        line = lines.get(pk)
        if line is None:
            alone.append(pk)
        else:
            by_line.setdefault(line, []).append(pk)
    batches: list[list[int]] = []
    current: list[int] = []
    for members in sorted(by_line.values(), key=len, reverse=True):
        if current and len(current) + len(members) > size:
            batches.append(current)
            current = []
        current = current + members
        if len(current) >= size:
            batches.append(current)
            current = []
    for pk in alone:
        current.append(pk)
        if len(current) >= size:
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    return batches
