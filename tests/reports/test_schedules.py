"""Report schedules (issue 16): beat entries in the utility's zone, runs mailed over a real
SMTP server on loopback (aiosmtpd), the delivery log, retries with backoff and the failure
shown on the pages.

The report is the tamper report of tests/reports/test_tamper.py for 8-14 May 2026.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from accounts.models import ActivityLog
from amisite.celery import app
from reports import actions, delivery, tasks
from reports.models import DeliveryState, ReportDefinition, ReportDelivery, ReportSchedule
from tests.meters.alarms.test_notifications import Inbox, free_port

pytestmark = pytest.mark.django_db
JOBURG = ZoneInfo("Africa/Johannesburg")


def definition_of(world) -> ReportDefinition:
    definition = ReportDefinition(
        organisation=world.org_a, name="Tamper weekly", source="tamper", period="fixed",
        period_from=date(2026, 5, 8), period_to=date(2026, 5, 14), columns=["serial", "score"],
    )  # fmt: skip
    actions.save_definition(definition, world.readonly_a)
    return definition


def staff(world):
    for user in (world.operator_a, world.readonly_a, world.operator_b):
        user.email = f"{user.username}@example.invalid"
        user.save()
    return [world.operator_a, world.readonly_a]


def schedule_of(world, **fields) -> ReportSchedule:
    values = {"at": time(6, 30), "frequency": "weekly", "weekday": 0, "fmt": "csv", **fields}
    return actions.save_schedule(
        ReportSchedule(definition=definition_of(world), **values), world.readonly_a, staff(world)
    )


@pytest.mark.parametrize(
    ("fields", "expected_local"),
    [
        ({"frequency": "daily"}, datetime(2026, 6, 4, 6, 30)),
        ({"frequency": "weekly", "weekday": 4, "at": time(7, 0)}, datetime(2026, 6, 5, 7, 0)),
        ({"frequency": "monthly", "day_of_month": 1, "at": time(5, 0)}, datetime(2026, 7, 1, 5)),
    ],
)
def test_beat_entry_runs_in_the_utilitys_zone(world, settings, fields, expected_local):
    """The real beat objects (the scheduler's entry of the row, its crontab) fire at the
    local time asked for: from Wednesday 3 June 2026 12:00 in Johannesburg."""
    settings.TIME_ZONE = "Africa/Johannesburg"
    schedule = schedule_of(world, **fields)
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (task.task, task.args, task.enabled) == (
        "reports.run_schedule",
        f"[{schedule.pk}]",
        True,
    )
    assert task.crontab.timezone.key == "Africa/Johannesburg"
    entry = ModelEntry(task, app=app)
    now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    entry.schedule.nowfun = lambda: now
    following = now + entry.schedule.remaining_estimate(now)
    assert following.astimezone(JOBURG).replace(tzinfo=None) == expected_local
    assert (entry.task, entry.args) == ("reports.run_schedule", [schedule.pk])

    schedule.enabled = False  # disabling or deleting the schedule stops the beat entry
    actions.save_schedule(schedule)
    assert not PeriodicTask.objects.get(pk=task.pk).enabled
    actions.delete_schedule(schedule)
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_scheduled_run_mailed_to_staff_of_the_organisation(
    fleet, media, smtp, django_capture_on_commit_callbacks
):
    schedule = schedule_of(fleet)
    schedule.recipients.add(fleet.operator_b)  # forced past the form: still never mailed
    with django_capture_on_commit_callbacks() as queued:
        run_id = tasks.run_schedule(schedule.pk)
    rows = ReportDelivery.objects.filter(run_id=run_id).order_by("email")
    assert [(d.email, d.status) for d in rows] == [
        ("analyst-a@example.invalid", "pending"), ("operator-a@example.invalid", "pending"),
        ("operator-b@example.invalid", "failed"),
    ]  # fmt: skip
    assert rows[2].error == "the recipient is not staff of the report's organisation"
    assert len(queued) == 1  # one callback queues a send task per pending delivery
    for row in rows[:2]:
        assert delivery.send(row.pk) == DeliveryState.SENT
    assert sorted(rcpt for (rcpt,), _m in smtp.messages) == [
        "analyst-a@example.invalid", "operator-a@example.invalid"
    ]  # fmt: skip
    _rcpt, mail = smtp.messages[0]
    assert mail["Subject"] == "[AMI] Tamper weekly, 2026-05-08 to 2026-05-14"
    text, attachment = mail.get_payload()
    assert "attached" in text.get_payload(decode=True).decode()
    table = list(csv.reader(io.StringIO(attachment.get_payload(decode=True).decode())))
    assert table == [["meter", "score"], ["NA000001", "8"], ["NA000002", "7"]]
    assert attachment.get_filename() == f"Tamper weekly-{run_id}.csv"
    # sent once: a second send of the same row does nothing
    assert delivery.send(rows[0].pk) == DeliveryState.SENT and len(smtp.messages) == 2


def test_a_large_file_goes_as_a_link(fleet, media, smtp, settings):
    settings.AMI_REPORT_ATTACH_MAX_BYTES = 10
    settings.AMI_SITE_URL = "https://ami.example.invalid"
    run_id = tasks.run_schedule(schedule_of(fleet).pk)
    row = ReportDelivery.objects.filter(run_id=run_id).first()
    assert delivery.send(row.pk) == DeliveryState.SENT and not row.attached
    _rcpt, mail = smtp.messages[0]
    assert not mail.is_multipart()
    body = mail.get_payload(decode=True).decode()
    assert f"https://ami.example.invalid/reports/runs/{run_id}/download/" in body


class Refusing(Inbox):
    """A mail server that answers 451 (try again later) to the first `failures` messages."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    async def handle_DATA(self, server, session, envelope):
        if self.failures:
            self.failures -= 1
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_smtp(settings):
    from aiosmtpd.controller import Controller

    inbox = Refusing(failures=2)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()


def test_backoff_grows_then_gives_up():
    assert [delivery.backoff_seconds(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert delivery.backoff_seconds(20) == 6 * 3600


@pytest.mark.django_db(transaction=True)
def test_beat_task_retries_a_refusing_server_then_sends_once(
    fleet, media, flaky_smtp, eager, settings
):
    """run_schedule -> build -> commit -> send task, retried (eagerly: at once) past two 451s."""
    schedule = schedule_of(fleet)
    schedule.recipients.set([fleet.operator_a])
    tasks.run_schedule.delay(schedule.pk)
    row = ReportDelivery.objects.get()
    assert (row.status, row.attempts, row.error) == (DeliveryState.SENT, 3, "")
    assert len(flaky_smtp.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_given_up_is_reported_and_shown(fleet, media, eager, settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_TIMEOUT = 2
    settings.AMI_REPORT_MAIL_ATTEMPTS = 3
    schedule = schedule_of(fleet)
    schedule.recipients.set([fleet.operator_a])
    tasks.run_schedule.delay(schedule.pk)
    row = ReportDelivery.objects.get()
    assert (row.status, row.attempts) == (DeliveryState.FAILED, 3)
    assert "mail server" in row.error and "Connection refused" in row.error
    assert (
        ActivityLog.objects.filter(action="report_delivery_failed", outcome="failed").count() == 1
    )
    assert "report delivery" in caplog.text and "failed after 3 attempts" in caplog.text

    page = Client()
    page.force_login(fleet.readonly_a)
    listed = page.get(reverse("reports:definitions")).content.decode()
    assert "delivery failed" in listed
    log = page.get(reverse("reports:schedule", args=[schedule.pk])).content.decode()
    assert "Failed (gave up)" in log and "Connection refused" in log
    detail = page.get(reverse("reports:definition", args=[schedule.definition_id])).content.decode()
    assert "1 failed" in detail


def test_schedule_page_offers_only_staff_of_the_organisation(fleet):
    staff(fleet)
    definition = definition_of(fleet)
    analyst = Client()
    analyst.force_login(fleet.readonly_a)
    url = reverse("reports:schedule-new", args=[definition.pk])
    page = analyst.get(url).content.decode()
    assert "operator-a" in page and "operator-b" not in page
    forced = analyst.post(url, {"frequency": "daily", "at": "06:00", "weekday": 0,
                                "day_of_month": 1, "fmt": "csv",
                                "recipients": [fleet.operator_b.pk]})  # fmt: skip
    assert forced.status_code == 200 and "Select a valid choice" in forced.content.decode()
    assert not ReportSchedule.objects.exists()
    saved = analyst.post(url, {"frequency": "monthly", "at": "05:00", "weekday": 0,
                               "day_of_month": 1, "fmt": "xlsx", "enabled": "on",
                               "recipients": [fleet.operator_a.pk]})  # fmt: skip
    assert saved.status_code == 302
    schedule = ReportSchedule.objects.get()
    assert schedule.organisation == fleet.org_a and schedule.created_by == fleet.readonly_a
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab.day_of_month == "1"
    other = Client()
    other.force_login(fleet.operator_b)
    assert other.get(reverse("reports:schedule", args=[schedule.pk])).status_code == 404
