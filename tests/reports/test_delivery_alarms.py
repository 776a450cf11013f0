"""A scheduled report's failed delivery raises an alarm (issue 16): through the alarm engine
(meters/alarms/system.py), in the definition's organisation, once per failed delivery,
listed and cleared like any alarm, never seen by the other region.

The mail server is real: aiosmtpd on loopback refusing the message (451 every time: retried,
then given up) or the recipient (550: given up at once). The report is the tamper report of
tests/reports/test_schedules.py.
"""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ActivityLog
from meters.alarms.actions import clear_alarm
from meters.alarms.defaults import install_default_rules
from meters.alarms.events import EventKind
from meters.alarms.models import Alarm, AlarmRule, AlarmState
from meters.alarms.notifications import render
from meters.alarms.system import raise_system_alarm
from reports import delivery, tasks
from reports.models import DeliveryState, ReportDelivery
from tests.meters.alarms.test_notifications import Inbox, free_port
from tests.reports.test_schedules import schedule_of

pytestmark = pytest.mark.django_db(transaction=True)
FAILED = EventKind.REPORT_DELIVERY_FAILED


class Refusing(Inbox):
    """A mail server that refuses every message (451, try later) or every recipient (550)."""

    def __init__(self, code: str):
        super().__init__()
        self.code = code

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.code.startswith("550"):
            return self.code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return self.code


def _serve(settings, code):
    controller = Controller(Refusing(code), hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.AMI_REPORT_MAIL_ATTEMPTS = 3
    return controller


@pytest.fixture
def busy_smtp(settings):
    controller = _serve(settings, "451 4.3.0 try again later")
    yield controller
    controller.stop()


@pytest.fixture
def refusing_smtp(settings):
    controller = _serve(settings, "550 5.1.1 no such mailbox")
    yield controller
    controller.stop()


def _scheduled_failure(fleet):
    """Run the schedule (eagerly: the send task and its retries at once) to operator A."""
    install_default_rules(fleet.org_a)
    install_default_rules(fleet.org_b)
    schedule = schedule_of(fleet)
    schedule.recipients.set([fleet.operator_a])
    run_id = tasks.run_schedule.delay(schedule.pk).get()
    return schedule, ReportDelivery.objects.get(run_id=run_id)


def test_given_up_delivery_raises_one_alarm_in_its_organisation(
    fleet, media, eager, busy_smtp, settings
):
    schedule, row = _scheduled_failure(fleet)
    assert (row.status, row.attempts) == (DeliveryState.FAILED, 3)
    assert "451" in row.error
    alarm = Alarm.objects.get(kind=FAILED)
    rule = AlarmRule.objects.get(organisation=fleet.org_a, default_key="report_delivery_failed")
    assert (alarm.rule, alarm.organisation, alarm.state) == (rule, fleet.org_a, AlarmState.RAISED)
    assert alarm.meter_id is None and alarm.line_id is None
    assert alarm.subject == f"Tamper weekly to operator-a@example.invalid (delivery {row.pk})"
    assert alarm.link == reverse("reports:run", args=[row.run_id])
    assert str(alarm) == f"Report delivery failed on {alarm.subject} (Raised)"
    # Subscribers are told like of any alarm, with the run's page.
    settings.AMI_SITE_URL = "https://ami.example.invalid"
    subject, body = render(alarm, "email")
    assert subject == f"[AMI] Major: Report delivery failed on {alarm.subject}"
    assert f"Page:         https://ami.example.invalid{alarm.link}" in body

    # Once per failed delivery: reporting it again (a task redelivered) adds nothing ...
    delivery.report_failure(row)
    assert Alarm.objects.filter(kind=FAILED).count() == 1
    # ... and the next run's failure is an alarm of its own.
    tasks.run_schedule.delay(schedule.pk)
    assert Alarm.objects.filter(kind=FAILED, organisation=fleet.org_a).count() == 2

    # Shown like other alarms (list and API) to region A, never to region B.
    a, b = Client(), Client()
    a.force_login(fleet.operator_a)
    b.force_login(fleet.operator_b)
    page = a.get(reverse("meters:alarms")).content.decode()
    assert f'href="{alarm.link}"' in page and f"(delivery {row.pk})" in page
    api = a.get(reverse("alarm-list"), {"kind": FAILED}, HTTP_ACCEPT="application/json").json()
    assert {r["reference"] for r in api["results"]} >= {alarm.reference}
    assert f"(delivery {row.pk})" not in b.get(reverse("meters:alarms")).content.decode()
    assert not Alarm.objects.restrict(fleet.operator_b, "view").filter(kind=FAILED).exists()

    # Cleared like any alarm (audited by the alarm actions).
    clear_alarm(alarm, acting_user=fleet.operator_a, comment="mail server fixed")
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.CLEARED and alarm.cleared_by == fleet.operator_a


def test_refused_recipient_fails_at_once_with_an_alarm(fleet, media, eager, refusing_smtp):
    _schedule, row = _scheduled_failure(fleet)
    assert (row.status, row.attempts) == (DeliveryState.FAILED, 1)
    assert row.error.startswith("recipient refused") and "550" in row.error
    assert Alarm.objects.get(kind=FAILED).reference.endswith(f"(delivery {row.pk})")


def test_a_recipient_refused_here_raises_an_alarm_too(fleet, media, smtp):
    """A recipient who is not staff of the organisation gets no mail, and someone hears."""
    install_default_rules(fleet.org_a)
    schedule = schedule_of(fleet)
    schedule.recipients.set([fleet.operator_b])  # forced past the form
    run_id = tasks.run_schedule(schedule.pk)
    row = ReportDelivery.objects.get(run_id=run_id)
    assert row.status == DeliveryState.FAILED and "not staff" in row.error
    alarm = Alarm.objects.get(kind=FAILED)
    assert alarm.organisation == fleet.org_a and "operator-b@" in alarm.reference
    assert smtp.messages == []


def test_without_a_rule_for_it_no_alarm_but_still_logged(fleet, media, eager, busy_smtp):
    """An organisation that switched the rule off gets the log and audit row only."""
    install_default_rules(fleet.org_a)
    AlarmRule.objects.filter(default_key="report_delivery_failed").update(active=False)
    schedule = schedule_of(fleet)
    schedule.recipients.set([fleet.operator_a])
    tasks.run_schedule.delay(schedule.pk)
    assert ReportDelivery.objects.get().status == DeliveryState.FAILED
    assert not Alarm.objects.filter(kind=FAILED).exists()


def test_a_parent_rule_with_subtree_covers_the_organisation(world):
    """Rules of an organisation above reach down with `subtree`; one limited to a grid node
    or meter model covers meters, not a report's mail."""
    parent = world.org_a.parent  # the utility above North and South
    AlarmRule.objects.create(name="all reports", organisation=parent, kinds=[FAILED])
    AlarmRule.objects.create(name="node only", organisation=world.org_a, kinds=[FAILED],
                             grid_node=world.grid_a.feeder)  # fmt: skip
    made = raise_system_alarm(world.org_a, FAILED, reference="x to y (delivery 1)",
                              at=timezone.now())  # fmt: skip
    assert [a.rule.name for a in made] == ["all reports"]


def test_a_system_alarm_needs_a_reference(world):
    AlarmRule.objects.create(name="reports", organisation=world.org_a, kinds=[FAILED])
    with pytest.raises(ValueError, match="reference"):
        raise_system_alarm(world.org_a, FAILED, reference="", at=timezone.now())
    assert not Alarm.objects.exists()
    # The database refuses an alarm on nothing: no meter, no line, no reference.
    rule = AlarmRule.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        now = timezone.now()
        Alarm.objects.create(rule=rule, organisation=world.org_a, kind=FAILED, severity=30,
                             first_event_at=now, last_event_at=now)  # fmt: skip


def test_the_next_good_delivery_clears_the_alarm(fleet, media, eager, settings):
    """The mail server is back: the schedule's next mail to the same recipient clears the
    failed delivery's alarm through the engine's clear path (audited as the system's);
    an alarm on anything else stays."""
    busy = _serve(settings, "451 4.3.0 try again later")
    try:
        schedule, failed = _scheduled_failure(fleet)
    finally:
        busy.stop()
    alarm = Alarm.objects.get(kind=FAILED)
    [other] = raise_system_alarm(fleet.org_a, FAILED, reference="Other report to x (delivery 0)",
                                 at=timezone.now())  # fmt: skip
    inbox = Inbox()
    good = Controller(inbox, hostname="127.0.0.1", port=free_port())
    good.start()
    settings.EMAIL_PORT = good.port
    try:
        run_id = tasks.run_schedule.delay(schedule.pk).get()
    finally:
        good.stop()
    sent = ReportDelivery.objects.get(run_id=run_id)
    assert sent.status == DeliveryState.SENT and len(inbox.messages) == 1
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.CLEARED and alarm.cleared_by is None
    assert alarm.clear_comment == f"delivered again: run {run_id} to {failed.email}"
    cleared = ActivityLog.objects.get(action="alarm_clear", object_id=str(alarm.pk))
    assert cleared.username == "system" and cleared.changes["by_event"] == "report_delivered"
    other.refresh_from_db()
    assert other.state == AlarmState.RAISED
