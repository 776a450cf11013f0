"""Tasks of the reports app (thin: the work is in building and delivery).

`reports.run_schedule` is what a schedule's beat entry (django-celery-beat, crontab in the
utility's zone, kept by `actions.save_schedule`) starts: a run of the definition's current
version by the schedule's owner, then one mail per recipient (`reports.send_report_mail`,
retried with backoff).
"""

from datetime import date

from celery import shared_task
from django.db import transaction

from . import delivery
from .building import build_export, build_run
from .exchange import export, importer
from .models import ExchangeTarget, ReportRun, ReportSchedule


@shared_task(name="reports.build_export")
def build_export_task(job_id: int) -> None:
    build_export(job_id)


@shared_task(name="reports.build_run", ignore_result=True)
def build_run_task(run_id: int) -> str:
    return build_run(run_id)


@shared_task(name="reports.run_schedule", ignore_result=True)
def run_schedule(schedule_id: int) -> int | None:
    """Run a schedule's definition now and mail it; returns the run's id (None: no schedule
    or disabled)."""
    schedule = ReportSchedule.objects.select_related("definition").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled:
        return None
    definition = schedule.definition
    run = ReportRun.objects.create(
        definition=definition,
        version=definition.versions.get(number=definition.version),
        organisation_id=definition.organisation_id,
        schedule=schedule,
        requested_by=schedule.created_by,
        fmt=schedule.fmt,
    )
    build_run(run.pk)
    run.refresh_from_db()
    with transaction.atomic():
        ids = [d.pk for d in delivery.plan(run)]
        transaction.on_commit(lambda: [send_report_mail.delay(pk) for pk in ids])
    return run.pk


@shared_task(bind=True, name="reports.send_report_mail", ignore_result=True, max_retries=None)
def send_report_mail(self, delivery_id: int) -> str:
    """Mail one recipient; a mail server failure is retried with backoff, a sent one never."""
    try:
        return delivery.send(delivery_id)
    except delivery.RetryLater as exc:
        raise self.retry(countdown=delivery.backoff_seconds(exc.attempts)) from None


@shared_task(bind=True, name="reports.exchange_export", ignore_result=True, max_retries=None)
def exchange_export(self, target_id: int, day: str | None = None, force: bool = False) -> int:
    """A target's export files for `day` (ISO date; default yesterday, the utility's time):
    each document's slot once; a failed write is retried with backoff, then reported. Then
    files older than the target's retention leave its outgoing/ (`export.remove_old`)."""
    target = ExchangeTarget.objects.select_related("organisation", "run_as").filter(
        pk=target_id
    ).first()  # fmt: skip
    if target is None or not target.enabled:
        return 0
    when = date.fromisoformat(day) if day else export.yesterday()
    written, retry = 0, None
    for document in export.documents(target):
        try:
            written += export.export_slot(target, document, when, force=force) is not None
        except export.RetryLater as exc:
            retry = exc
    export.remove_old(target)
    if retry is not None:
        raise self.retry(
            args=[target_id, when.isoformat(), False],
            countdown=export.backoff_seconds(retry.attempts),
        ) from None
    return written


@shared_task(name="reports.exchange_import", ignore_result=True)
def exchange_import() -> int:
    """Every enabled import target's incoming/ folder, once (reports/exchange/importer.py)."""
    files = 0
    for target in ExchangeTarget.objects.filter(enabled=True, imports=True).select_related(
        "organisation", "run_as"
    ):
        files += len(importer.scan(target) or [])
    return files
