"""Report operations: queue a long export (`building.build_export` writes it, in the task);
save a report definition as a new version; queue a run of it; keep a schedule's beat entry.

Every write goes through here, from the pages and the API alike.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django.http import QueryDict
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from . import engine
from .exchange import folders
from .models import (
    ExportJob,
    ReportDefinition,
    ReportRun,
    ReportSchedule,
    ReportVersion,
    ScheduleFrequency,
)
from .tasks import build_export_task, build_run_task


def queue_export(user, fmt: str, params: QueryDict, rows_estimated: int) -> ExportJob:
    """A queued export of the query in `params`; the task starts after commit."""
    with transaction.atomic():
        job = ExportJob.objects.create(
            organisation=user.organisation,
            requested_by=user,
            fmt=fmt,
            params={k: v for k, v in params.lists()},
            rows_estimated=rows_estimated,
        )
        transaction.on_commit(lambda: build_export_task.delay(job.pk))
    return job


@transaction.atomic
def save_definition(definition: ReportDefinition, user) -> ReportVersion:
    """Save the definition and record its next version (numbers never repeat or skip)."""
    if not definition.grouping:
        definition.grouping = engine.SOURCES[definition.source].default_grouping
    if definition.pk is None:
        definition.created_by = definition.created_by or user
        definition.save()
    else:
        ReportDefinition.objects.select_for_update().filter(pk=definition.pk).first()
        definition.version = ReportDefinition.objects.filter(pk=definition.pk).values_list(
            "version", flat=True
        )[0]
    definition.version += 1
    definition.save()
    return ReportVersion.objects.create(
        definition=definition,
        number=definition.version,
        snapshot=engine.snapshot(definition),
        saved_by=user if getattr(user, "pk", None) else None,
    )


def current_version(definition: ReportDefinition) -> ReportVersion:
    return definition.versions.get(number=definition.version)


def queue_run(definition: ReportDefinition, user, fmt: str, schedule=None) -> ReportRun:
    """A run of the definition's current version into a file; the task starts after commit."""
    with transaction.atomic():
        run = ReportRun.objects.create(
            definition=definition,
            version=current_version(definition),
            organisation_id=definition.organisation_id,
            schedule=schedule,
            requested_by=user,
            fmt=fmt,
        )
        transaction.on_commit(lambda: build_run_task.delay(run.pk))
    return run


CRON_WEEKDAY = ("1", "2", "3", "4", "5", "6", "0")  # Monday=0 here, Sunday=0 in cron


def crontab_fields(schedule: ReportSchedule) -> dict[str, str]:
    """The beat crontab (in the utility's zone) of a daily, weekly or monthly schedule."""
    fields = {"minute": str(schedule.at.minute), "hour": str(schedule.at.hour),
              "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}  # fmt: skip
    if schedule.frequency == ScheduleFrequency.WEEKLY:
        fields["day_of_week"] = CRON_WEEKDAY[schedule.weekday]
    elif schedule.frequency == ScheduleFrequency.MONTHLY:
        fields["day_of_month"] = str(schedule.day_of_month)
    return fields


@transaction.atomic
def save_schedule(schedule: ReportSchedule, user=None, recipients=None) -> ReportSchedule:
    """Save the schedule (its organisation is its definition's) and its beat entry."""
    schedule.organisation_id = schedule.definition.organisation_id
    if schedule.pk is None:
        schedule.created_by = schedule.created_by or user
    schedule.save()
    if recipients is not None:
        schedule.recipients.set(recipients)
    keep_beat_entry(
        schedule, "reports.run_schedule",
        f"report schedule {schedule.pk}: {schedule.definition.name}", crontab_fields(schedule),
    )  # fmt: skip
    return schedule


def keep_beat_entry(owner, task_name: str, name: str, crontab: dict) -> None:
    """`owner`'s beat entry (its `periodic_task`) runs `task_name` with the owner's pk at
    `crontab` in the utility's zone, enabled as the owner is; a new entry is linked to it."""
    task = owner.periodic_task or PeriodicTask(task=task_name)
    task.name = name[:200]
    task.crontab, _ = CrontabSchedule.objects.get_or_create(timezone=settings.TIME_ZONE, **crontab)
    task.interval = None
    task.args = json.dumps([owner.pk])
    task.enabled = owner.enabled
    task.queue = "default"
    task.save()
    if owner.periodic_task_id != task.pk:
        type(owner).objects.filter(pk=owner.pk).update(periodic_task=task)
        owner.periodic_task = task


@transaction.atomic
def delete_schedule(schedule: ReportSchedule) -> None:
    task = schedule.periodic_task
    schedule.delete()
    if task is not None:
        task.delete()


@transaction.atomic
def delete_definition(definition: ReportDefinition) -> None:
    """The definition, its versions, runs and schedules (with their beat entries)."""
    for schedule in definition.schedules.select_related("periodic_task"):
        delete_schedule(schedule)
    definition.delete()  # versions and runs go with it


BUILTIN_PERIODS = {"billing": "last_month", "balance": "last_month", "load": "last_7_days",
                   "tamper": "last_30_days", "collection": "last_7_days",
                   "vending": "this_month", "patterns": "last_30_days",
                   "query": "last_7_days"}  # fmt: skip
# Settings a built-in needs beyond its period: the data query reads the energy registers.
BUILTIN_SETTINGS = {"query": {"quantities": ["1-0:1.8.0*255", "1-0:2.8.0*255"]}}


@transaction.atomic
def seed_builtins(organisation, user=None) -> list[ReportDefinition]:
    """A definition of every built-in report for the organisation (those it lacks): the
    starting point analysts copy and change. Returns the ones made."""
    have = set(
        ReportDefinition.objects.filter(organisation=organisation)
        .exclude(builtin="")
        .values_list("builtin", flat=True)
    )
    made = []
    for key, source in engine.SOURCES.items():
        if key in have:
            continue
        definition = ReportDefinition(
            organisation=organisation,
            name=source.title,
            description=f"Built-in: {source.description}.",
            source=key,
            period=BUILTIN_PERIODS.get(key, "last_month"),
            builtin=key,
            created_by=user,
            **BUILTIN_SETTINGS.get(key, {}),
        )
        save_definition(definition, user)
        made.append(definition)
    return made


@transaction.atomic
def save_target(target, user=None):
    """Save an exchange target, make its folders and keep its daily beat entry (at its
    time, the utility's zone): `reports.exchange_export` writes the previous day's files."""
    target.full_clean(exclude=["periodic_task"])
    target.save()
    folders.ensure(target)
    keep_beat_entry(
        target, "reports.exchange_export", f"exchange export {target.pk}: {target.name}",
        {"minute": str(target.at.minute), "hour": str(target.at.hour), "day_of_week": "*",
         "day_of_month": "*", "month_of_year": "*"},
    )  # fmt: skip
    return target


@transaction.atomic
def delete_target(target) -> None:
    """The target, its log rows and its beat entry; its folder and files stay on disk."""
    task = target.periodic_task
    target.delete()
    if task is not None:
        task.delete()
