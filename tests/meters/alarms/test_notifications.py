"""Notifications over real loopback servers: SMTP (aiosmtpd) and SMPP (smpp_server.py beside).

Time is frozen by passing an aware `now`; the Django SMTP backend and the smpplib client
talk to servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller

from meters.alarms import notifications, sms
from meters.alarms.engine import evaluate_events
from meters.alarms.models import DeliveryChannel, DeliveryStatus, NotificationDelivery, Severity
from meters.alarms.notifications import RetryLater, plan_deliveries, send_delivery
from tests.meters.alarms.helpers import MAGNET, POWER_DOWN, T0, events, make_rule, make_subscription
from tests.meters.alarms.smpp_server import SmppServer

pytestmark = pytest.mark.django_db

NOON_UTC = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Johannesburg
NIGHT_UTC = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 23:30 in Johannesburg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()


@pytest.fixture
def eager():
    """Celery tasks run in this process at once (as a worker would, minus the broker)."""
    from amisite.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def smsc(settings):
    server = SmppServer().start()
    settings.AMI_SMS_URL = server.url
    sms._cached.cache_clear()
    yield server
    server.stop()
    sms._cached.cache_clear()


def subscribe(user, **extra):
    extra.setdefault("email", f"{user.username}@example.invalid")
    extra.setdefault("timezone", "Africa/Johannesburg")
    return make_subscription(user, **extra)


def raise_one(meter, code=POWER_DOWN, at=T0):
    (alarm,) = evaluate_events(events(meter, code, start=at))
    return alarm


def send_all(deliveries, now=NOON_UTC):
    return [send_delivery(d.pk, now=now) for d in deliveries]


def test_email_and_sms_content(world, smtp, smsc):
    make_rule(world.org_a, severity=Severity.CRITICAL)
    subscribe(world.operator_a, by_sms=True, phone="+27820000001")
    subscribe(world.operator_b, by_sms=True, phone="+27820000002")  # other organisation
    alarm = raise_one(world.grid_a.meters[0])
    planned = plan_deliveries(alarm, now=NOON_UTC)
    assert sorted(d.channel for d in planned) == ["email", "sms"]
    assert send_all(planned) == ["sent", "sent"]

    ((rcpt, mail),) = smtp.messages
    assert rcpt == ["operator-a@example.invalid"]
    assert mail["Subject"] == "[AMI] Critical: Power failure on meter NA000001"
    text = mail.get_payload(decode=True).decode()
    assert "Power failure on meter NA000001 at NA-SP1." in text
    assert "Address:      1 NA Street" in text
    assert "First event:  2026-06-01 12:42 SAST" in text  # local time of the subscriber

    ((system_id, to, body),) = smsc.messages
    assert (system_id, to) == ("ami", "27820000001")
    assert body == "AMI Critical: Power failure meter NA000001 at NA-SP1 since 01 Jun 12:42"
    sms_row = NotificationDelivery.objects.get(channel=DeliveryChannel.SMS)
    assert sms_row.status == DeliveryStatus.SENT and sms_row.gateway_id == "msg-1"
    assert sms_row.sent_at == NOON_UTC and sms_row.organisation == world.org_a


def test_kinds_severity_and_node_filters(world):
    make_rule(world.org_a, kinds=["power_failure", "magnetic_tamper"], severity=Severity.MINOR)
    subscribe(world.operator_a, min_severity=Severity.MAJOR)  # too severe a threshold
    subscribe(world.engineer_a, kinds=["magnetic_tamper"], min_severity=Severity.MINOR)
    subscribe(world.admin_a, grid_node=world.grid_a.service_points[1], min_severity=Severity.INFO)
    alarm = raise_one(world.grid_a.meters[0])
    assert plan_deliveries(alarm, now=NOON_UTC) == []
    tamper = raise_one(world.grid_a.meters[0], MAGNET)
    assert [d.user for d in plan_deliveries(tamper, now=NOON_UTC)] == [world.engineer_a]
    second = raise_one(world.grid_a.meters[1])
    assert [d.user for d in plan_deliveries(second, now=NOON_UTC)] == [world.admin_a]


def test_quiet_hours_and_critical_override(world):
    quiet = {"quiet_start": time(22, 0), "quiet_end": time(6, 0)}
    make_rule(world.org_a, kinds=["power_failure"], severity=Severity.MAJOR)
    make_rule(world.org_a, kinds=["magnetic_tamper"], severity=Severity.CRITICAL)
    subscribe(world.operator_a, **quiet)
    subscribe(world.engineer_a, critical_overrides_quiet=False, **quiet)
    major = raise_one(world.grid_a.meters[0])
    critical = raise_one(world.grid_a.meters[0], MAGNET)

    assert plan_deliveries(major, now=NIGHT_UTC) == []
    statuses = set(NotificationDelivery.objects.values_list("status", flat=True))
    assert statuses == {DeliveryStatus.QUIET_HOURS}
    # Critical: sent to the operator in the night, not to the engineer who opted out.
    assert [d.user for d in plan_deliveries(critical, now=NIGHT_UTC)] == [world.operator_a]
    assert (
        NotificationDelivery.objects.get(alarm=critical, user=world.engineer_a).status
        == DeliveryStatus.QUIET_HOURS
    )
    # At noon local time nothing is quiet.
    later = raise_one(world.grid_a.meters[1])
    assert len(plan_deliveries(later, now=NOON_UTC)) == 2


def test_rate_limit_per_user_per_hour(world, settings):
    settings.AMI_NOTIFY_PER_USER_PER_HOUR = 3
    make_rule(world.org_a, kinds=["power_failure", "magnetic_tamper"])
    subscribe(world.operator_a)
    alarms = [
        raise_one(meter, code) for meter in world.grid_a.meters for code in (POWER_DOWN, MAGNET)
    ]
    planned = [
        plan_deliveries(a, now=NOON_UTC + timedelta(minutes=i)) for i, a in enumerate(alarms)
    ]
    assert [len(p) for p in planned] == [1, 1, 1, 0]
    limited = NotificationDelivery.objects.get(alarm=alarms[3])
    assert limited.status == DeliveryStatus.RATE_LIMITED
    # An hour after the first message there is room again.
    extra = raise_one(world.grid_a.meters[0], POWER_DOWN, at=T0 + timedelta(hours=3))
    from meters.alarms.actions import clear_alarm

    assert plan_deliveries(extra, now=NOON_UTC + timedelta(minutes=30)) == []
    clear_alarm(extra, acting_user=world.engineer_a)
    again = raise_one(world.grid_a.meters[0], POWER_DOWN, at=T0 + timedelta(hours=4))
    assert len(plan_deliveries(again, now=NOON_UTC + timedelta(minutes=61))) == 1


def test_retry_on_a_failed_gateway_then_sent_once(world, smsc):
    make_rule(world.org_a)
    subscribe(world.operator_a, by_email=False, by_sms=True, phone="+27820000001")
    (delivery,) = plan_deliveries(raise_one(world.grid_a.meters[0]), now=NOON_UTC)
    smsc.fail_next = 2
    for attempt in (1, 2):
        with pytest.raises(RetryLater) as caught:
            send_delivery(delivery.pk, now=NOON_UTC)
        assert caught.value.attempts == attempt
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING and "0x08" in delivery.last_error
    assert notifications.backoff_seconds(1) == 30 and notifications.backoff_seconds(2) == 60
    assert send_delivery(delivery.pk, now=NOON_UTC) == DeliveryStatus.SENT
    # Never twice: the task delivered again (or a second planner) sends nothing more.
    assert send_delivery(delivery.pk, now=NOON_UTC) == DeliveryStatus.SENT
    assert plan_deliveries(delivery.alarm, now=NOON_UTC) == []
    assert len(smsc.messages) == 1 and smsc.submits == 3
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.last_error == ""


def test_gives_up_after_max_attempts(world, smsc, settings):
    settings.AMI_NOTIFY_MAX_ATTEMPTS = 3
    make_rule(world.org_a)
    subscribe(world.operator_a, by_email=False, by_sms=True, phone="+27820000001")
    (delivery,) = plan_deliveries(raise_one(world.grid_a.meters[0]), now=NOON_UTC)
    smsc.fail_next = 10
    for _ in range(2):
        with pytest.raises(RetryLater):
            send_delivery(delivery.pk)
    assert send_delivery(delivery.pk) == DeliveryStatus.FAILED
    assert send_delivery(delivery.pk) == DeliveryStatus.FAILED
    assert smsc.submits == 3 and smsc.messages == []


def test_refused_for_good_is_not_retried(world, smsc):
    make_rule(world.org_a)
    subscribe(world.operator_a, by_email=False, by_sms=True, phone="+27820000001")
    (delivery,) = plan_deliveries(raise_one(world.grid_a.meters[0]), now=NOON_UTC)
    smsc.fail_next, smsc.fail_status = 1, 0x0B  # ESME_RINVDSTADR: bad destination
    assert send_delivery(delivery.pk) == DeliveryStatus.FAILED
    assert smsc.submits == 1


@pytest.mark.django_db(transaction=True)
def test_task_path_from_raise_to_mailbox(world, smtp, eager):
    """evaluate_events commits -> notify task -> commit -> send task -> SMTP (real commits)."""
    make_rule(world.org_a)
    subscribe(world.operator_a)
    raise_one(world.grid_a.meters[0])
    assert len(smtp.messages) == 1
    assert NotificationDelivery.objects.get().status == DeliveryStatus.SENT
    assert evaluate_events(events(world.grid_a.meters[0], POWER_DOWN)) == []
    assert len(smtp.messages) == 1  # the same event again: no new alarm, no new message


@pytest.mark.django_db(transaction=True)
def test_send_task_retries_then_sends(world, smsc, eager):
    """The send task retries a failing SMSC (eagerly: at once) and sends exactly once."""
    make_rule(world.org_a)
    subscribe(world.operator_a, by_email=False, by_sms=True, phone="+27820000001")
    smsc.fail_next = 2
    raise_one(world.grid_a.meters[0])  # commits: notify task, then send task with retries
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 3
    assert len(smsc.messages) == 1 and smsc.submits == 3


class Gateway(BaseHTTPRequestHandler):
    answers: list = []
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Gateway.received.append((self.headers.get("Authorization"), body))
        code = Gateway.answers.pop(0) if Gateway.answers else 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"id": f"gw-{len(Gateway.received)}"}).encode())

    def log_message(self, *args):
        pass


def test_http_gateway_backend(settings):
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        Gateway.answers, Gateway.received = [503, 400], []
        backend = sms.backend_from_url(
            f"http://127.0.0.1:{server.server_port}/send?source=AMI", token="t0k"
        )
        with pytest.raises(sms.SmsError) as busy:
            backend.send("+27820000001", "hello")
        assert busy.value.retryable
        with pytest.raises(sms.SmsError) as refused:
            backend.send("+27820000001", "hello")
        assert not refused.value.retryable
        assert backend.send("+27820000001", "hello") == "gw-3"
        auth, body = Gateway.received[-1]
        assert auth == "Bearer t0k" and body == {
            "to": "+27820000001",
            "from": "AMI",
            "text": "hello",
        }
    finally:
        server.shutdown()


def test_file_backend(tmp_path):
    path = tmp_path / "sms.jsonl"
    backend = sms.backend_from_url(f"file://{path}")
    backend.send("+1", "one")
    backend.send("+2", "two")
    assert [json.loads(line)["to"] for line in path.read_text().splitlines()] == ["+1", "+2"]


def test_customers_of_an_outage_behind_a_setting(world, settings):
    make_rule(world.org_a)
    for meter in world.grid_a.meters:
        raise_one(meter)
    assert notifications.notify_customers_of_outage(world.grid_a.transformer, now=NOON_UTC) == 0
    settings.AMI_NOTIFY_CUSTOMERS_OF_OUTAGES = True
    assert notifications.notify_customers_of_outage(world.grid_a.transformer, now=NOON_UTC) == 2
    rows = NotificationDelivery.objects.filter(customer__isnull=False)
    assert sorted(rows.values_list("recipient", flat=True)) == ["c1@na.example", "c2@na.example"]
    assert "Power outage at 1 NA Street since" in rows.get(recipient="c1@na.example").body
    # Told once: a second call adds nothing; organisation B's customers were never touched.
    assert notifications.notify_customers_of_outage(world.grid_a.transformer, now=NOON_UTC) == 0
    assert notifications.notify_customers_of_outage(world.grid_b.transformer, now=NOON_UTC) == 0
