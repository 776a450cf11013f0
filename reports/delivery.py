"""Mailing a scheduled run to its recipients: one `ReportDelivery` per recipient.

* **Who**: the schedule's recipients that are still active staff *of the definition's
  organisation* with an e-mail address; anyone else gets a failed row saying why (nothing
  is mailed outside the organisation, whatever the schedule said when it was saved).
* **What**: the file attached when it is at most `AMI_REPORT_ATTACH_MAX_BYTES` (default
  5 MB), else a link to the run's download page (sign-in and scope required), built on
  `AMI_SITE_URL`.
* **Never twice**: one row per (run, recipient), unique in the database; a message is sent
  only by the task that moves its row from pending to sending under a row lock.
* **Failures**: a mail server error a retry can help puts the row back to pending and the
  task retries with exponential backoff (`AMI_REPORT_MAIL_ATTEMPTS`, default 5; base
  `AMI_REPORT_MAIL_RETRY_S`, default 60 s); then the row is failed, logged as an error and
  audited, and the schedule's page shows it failed. A refused recipient fails at once.
* **Alarm**: every failed delivery (given up, refused by the mail server, or refused here
  because the recipient may not have it) raises one alarm of kind "report_delivery_failed"
  in the definition's organisation (`meters.alarms.system`: the organisation's rules for that
  kind, by default "Scheduled report not delivered"), on the delivery ("<report> to
  <address> (delivery N)", linked to the run's page); it is listed, pushed, notified,
  acknowledged and cleared like any alarm, and never raised twice for one delivery.
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.choices import Outcome
from meters.alarms.events import EventKind
from meters.alarms.system import clear_system_alarms, raise_system_alarm

from .building import run_path
from .exporters import FORMATS
from .models import DeliveryState, ExportStatus, ReportDelivery, ReportRun

log = logging.getLogger(__name__)


class RetryLater(Exception):
    def __init__(self, attempts: int):
        super().__init__(f"retry after attempt {attempts}")
        self.attempts = attempts


def attach_limit() -> int:
    return int(getattr(settings, "AMI_REPORT_ATTACH_MAX_BYTES", 5 * 1024 * 1024))


def max_attempts() -> int:
    return int(getattr(settings, "AMI_REPORT_MAIL_ATTEMPTS", 5))


def backoff_seconds(attempts: int) -> int:
    """Delay before the next try: 60 s, 120 s, 240 s, ... at most six hours."""
    base = int(getattr(settings, "AMI_REPORT_MAIL_RETRY_S", 60))
    return min(base * 2 ** max(attempts - 1, 0), 6 * 3600)


def _refusal(user, run: ReportRun) -> str:
    if user is None or not user.is_active:
        return "the recipient's account is inactive"
    if user.organisation_id != run.organisation_id:
        return "the recipient is not staff of the report's organisation"
    if not user.email:
        return "the recipient has no e-mail address"
    return ""


def plan(run: ReportRun) -> list[ReportDelivery]:
    """A delivery row per recipient of the run's schedule; returns those to send.

    Idempotent: a recipient with a row already is left alone. A failed run mails nobody:
    its failure shows on the schedule's page.
    """
    if run.schedule is None or run.status != ExportStatus.DONE:
        return []
    to_send = []
    for user in run.schedule.recipients.all().order_by("pk"):
        refused = _refusal(user, run)
        try:
            with transaction.atomic():
                delivery = ReportDelivery.objects.create(
                    run=run,
                    schedule=run.schedule,
                    organisation_id=run.organisation_id,
                    recipient=user,
                    email=user.email or "-",
                    attached=run.size <= attach_limit(),
                    status=DeliveryState.FAILED if refused else DeliveryState.PENDING,
                    error=refused,
                )
        except IntegrityError:
            continue  # planned already
        if refused:
            report_failure(delivery)
        else:
            to_send.append(delivery)
    return to_send


def _message(delivery: ReportDelivery) -> EmailMessage:
    run = delivery.run
    name = run.version.snapshot["name"]
    period = f"{run.first_day} to {run.last_day}" if run.first_day else ""
    subject = f"[AMI] {name}" + (f", {period}" if period else "")
    lines = [
        f"{name} (version {run.version.number}), {period}.",
        f"Schedule: {run.schedule.describe() if run.schedule else 'on demand'}.",
        f"Rows: {run.rows_done}.",
        "",
    ]
    site = getattr(settings, "AMI_SITE_URL", "http://localhost:8000").rstrip("/")
    link = site + reverse("reports:run-download", args=[run.pk])
    if delivery.attached:
        lines.append("The report is attached.")
    else:
        lines.append(f"The report is {run.size} bytes, too large to attach; download it at")
        lines.append(link)
        lines.append("(sign in first; the link works for the report's organisation only).")
    message = EmailMessage(
        subject, "\n".join(lines) + "\n", settings.DEFAULT_FROM_EMAIL, [delivery.email]
    )
    if delivery.attached:
        path = run_path(run)
        if path is None:
            raise FileNotFoundError("the run's file is gone")
        content_type, ext = FORMATS[run.fmt]
        with open(path, "rb") as handle:
            message.attach(f"{name[:60]}-{run.pk}.{ext}", handle.read(), content_type)
    return message


def send(delivery_id: int) -> str:
    """Send one pending delivery at most once; returns its new status.

    Raises `RetryLater` when the mail server failed and another attempt is allowed.
    """
    with transaction.atomic():
        delivery = ReportDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status != DeliveryState.PENDING:
            return delivery.status if delivery else "missing"
        delivery.status = DeliveryState.SENDING
        delivery.attempts += 1
        delivery.save(update_fields=["status", "attempts"])
    delivery = ReportDelivery.objects.select_related(
        "run__version", "run__schedule__definition"
    ).get(pk=delivery_id)
    retryable = True
    try:
        _message(delivery).send()
    except smtplib.SMTPRecipientsRefused as exc:
        error, retryable = f"recipient refused: {exc}", False
    except (smtplib.SMTPException, OSError) as exc:
        error = f"mail server: {exc!r}"
    else:
        delivery.status, delivery.error, delivery.sent_at = DeliveryState.SENT, "", timezone.now()
        delivery.save(update_fields=["status", "error", "sent_at"])
        clear_failures(delivery)
        return delivery.status
    again = retryable and delivery.attempts < max_attempts()
    delivery.status = DeliveryState.PENDING if again else DeliveryState.FAILED
    delivery.error = error[:2000]
    delivery.save(update_fields=["status", "error"])
    if again:
        raise RetryLater(delivery.attempts)
    report_failure(delivery)
    return delivery.status


def report_failure(delivery: ReportDelivery) -> None:
    """A delivery given up: an error in the log and the audit trail (the page shows it), and
    an alarm in its organisation (once per delivery)."""
    log.error(
        "report delivery %s to %s failed after %s attempts: %s",
        delivery.pk, delivery.email, delivery.attempts, delivery.error,
    )  # fmt: skip
    audit.record(
        "report_delivery_failed",
        user=None,
        obj=delivery.run,
        organisation=delivery.organisation,
        outcome=Outcome.FAILED,
        detail=f"run {delivery.run_id} to {delivery.email}: {delivery.error}"[:500],
    )
    raise_system_alarm(
        delivery.organisation,
        EventKind.REPORT_DELIVERY_FAILED,
        reference=failure_reference(delivery),
        link=reverse("reports:run", args=[delivery.run_id]),
        at=timezone.now(),
    )


def failure_reference(delivery: ReportDelivery) -> str:
    """What the alarm of a failed delivery is on (one alarm per delivery)."""
    run = delivery.run
    name = run.version.snapshot.get("name") or str(run.definition)
    return f"{name[:120]} to {delivery.email[:60]} (delivery {delivery.pk})"


def clear_failures(sent: ReportDelivery) -> list:
    """A mail of a schedule got through: the alarms of the earlier failed deliveries of the
    same schedule to the same address are cleared (the engine's clear path)."""
    if sent.schedule_id is None:
        return []
    failed = ReportDelivery.objects.filter(
        schedule_id=sent.schedule_id, email=sent.email, status=DeliveryState.FAILED,
        pk__lt=sent.pk,
    ).select_related("run__version", "run__definition")  # fmt: skip
    references = [failure_reference(d) for d in failed]
    if not references:
        return []
    return clear_system_alarms(
        sent.organisation, EventKind.REPORT_DELIVERY_FAILED, references=references,
        at=sent.sent_at, comment=f"delivered again: run {sent.run_id} to {sent.email}",
        by_event="report_delivered",
    )  # fmt: skip
