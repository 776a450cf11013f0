"""Alarm notifications by e-mail and SMS: who is told, when not, and a log of every message.

* **Who**: active `AlarmSubscription`s whose organisation is the alarm's or above it, whose
  node (if any) holds the meter, whose kinds (empty: all) include the alarm's kind and whose
  minimum severity it reaches, and whose user may still see the alarm (scope re-checked).
* **When not** (the row is kept with the reason, nothing is sent):
  - quiet hours: local time in the subscription's zone within [quiet_start, quiet_end)
    (may wrap midnight). A *critical* alarm is sent anyway when the subscription says
    `critical_overrides_quiet` (the default);
  - rate limit: more than `AMI_NOTIFY_PER_USER_PER_HOUR` messages (all channels) to one
    user in the hour before `now`. Critical alarms count but are not exempt.
* **Never twice**: one `NotificationDelivery` per (alarm, subscription, channel), unique in
  the database; a message is sent only by the task that moves its row from pending to
  sending under a row lock. A crash after that leaves it "sending": at most once, never a
  duplicate. A gateway failure that a retry can help puts it back to pending and the task
  retries with exponential backoff (`AMI_NOTIFY_MAX_ATTEMPTS`), then it is failed.

Everything takes an aware `now` so tests freeze time by passing it.
"""

from __future__ import annotations

import smtplib
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import User

from ..models import Customer
from . import sms
from .events import EventKind
from .models import (
    OPEN_STATES,
    Alarm,
    AlarmSubscription,
    DeliveryChannel,
    DeliveryStatus,
    NotificationDelivery,
    Severity,
)

COUNTED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT)


class RetryLater(Exception):
    """The gateway failed in a way a retry can help; the delivery is pending again."""

    def __init__(self, attempts: int):
        super().__init__(f"retry after attempt {attempts}")
        self.attempts = attempts


def _aware(now: datetime | None) -> datetime:
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("naive datetime: pass an aware `now`")
    return now


def per_hour_limit() -> int:
    return int(getattr(settings, "AMI_NOTIFY_PER_USER_PER_HOUR", 20))


def max_attempts() -> int:
    return int(getattr(settings, "AMI_NOTIFY_MAX_ATTEMPTS", 5))


def backoff_seconds(attempts: int) -> int:
    """Delay before the next try: 30 s, 60 s, 120 s, ... at most an hour."""
    base = int(getattr(settings, "AMI_NOTIFY_RETRY_BASE_S", 30))
    return min(base * 2 ** max(attempts - 1, 0), 3600)


def in_quiet_hours(subscription: AlarmSubscription, now: datetime) -> bool:
    start, end = subscription.quiet_start, subscription.quiet_end
    if start is None or end is None or start == end:
        return False
    local: time = now.astimezone(ZoneInfo(subscription.timezone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # wraps midnight, e.g. 22:00-06:00


def matching_subscriptions(alarm: Alarm) -> list[AlarmSubscription]:
    above = [int(pk) for pk in alarm.organisation.path.strip("/").split("/") if pk]
    candidates = AlarmSubscription.objects.filter(
        active=True, organisation_id__in=above, min_severity__lte=alarm.severity
    ).select_related("user", "grid_node")
    point = alarm.service_point
    chosen = []
    for sub in candidates:
        if sub.kinds and alarm.kind not in sub.kinds:
            continue
        if sub.grid_node_id and (point is None or not point.path.startswith(sub.grid_node.path)):
            continue
        if not sub.user.is_active:
            continue
        if not Alarm.objects.restrict(sub.user, "view").filter(pk=alarm.pk).exists():
            continue  # the user's scope changed since they subscribed
        chosen.append(sub)
    return chosen


def render(alarm: Alarm, channel: str, tz: str | None = None) -> tuple[str, str]:
    """(subject, body) of a message about one alarm; SMS bodies fit one 160-char message."""
    zone = ZoneInfo(tz or settings.TIME_ZONE)
    since = alarm.first_event_at.astimezone(zone)
    on = alarm.subject  # "meter 90000001", or "line DC-A11" for a line's fault
    point = alarm.service_point
    where = f" at {point.code}" if point else ""
    severity = alarm.get_severity_display()
    what = alarm.get_kind_display()
    subject = f"[AMI] {severity}: {what} on {on}"
    if channel == DeliveryChannel.SMS:
        body = f"AMI {severity}: {what} {on}{where} since {since:%d %b %H:%M}"
        if alarm.count > 1:
            body += f" ({alarm.count}x)"
        return subject, body[:160]
    lines = [
        f"{what} on {on}{where}.",
        "",
        f"Severity:     {severity}",
        f"Organisation: {alarm.organisation.name}",
        f"First event:  {since:%Y-%m-%d %H:%M %Z}",
        f"Events:       {alarm.count}",
        f"Rule:         {alarm.rule.name}",
    ]
    if point is not None and point.address:
        lines.insert(2, f"Address:      {point.address}")
    if alarm.link:  # a system alarm's page (a report's run)
        site = getattr(settings, "AMI_SITE_URL", "http://localhost:8000").rstrip("/")
        lines.append(f"Page:         {site}{alarm.link}")
    return subject, "\n".join(lines) + "\n"


def _recipients(sub: AlarmSubscription) -> list[tuple[str, str]]:
    out = []
    if sub.by_email and (sub.email or sub.user.email):
        out.append((DeliveryChannel.EMAIL, sub.email or sub.user.email))
    if sub.by_sms and sub.phone:
        out.append((DeliveryChannel.SMS, sub.phone))
    return out


def plan_deliveries(alarm: Alarm, *, now: datetime | None = None) -> list[NotificationDelivery]:
    """Create the delivery rows for one alarm; returns those to send (status pending).

    Idempotent: a row that exists already is left as it is and not returned again.
    """
    now = _aware(now)
    alarm = Alarm.objects.select_related(
        "meter", "line", "organisation", "service_point", "rule"
    ).get(pk=alarm.pk)
    if alarm.state not in OPEN_STATES:
        return []
    to_send = []
    for sub in matching_subscriptions(alarm):
        for channel, recipient in _recipients(sub):
            with transaction.atomic():
                # One user's messages are counted one planner at a time (rate limit).
                User.objects.select_for_update().filter(pk=sub.user_id).first()
                if NotificationDelivery.objects.filter(
                    alarm=alarm, subscription=sub, channel=channel
                ).exists():
                    continue
                status = DeliveryStatus.PENDING
                critical = alarm.severity >= Severity.CRITICAL
                if in_quiet_hours(sub, now) and not (critical and sub.critical_overrides_quiet):
                    status = DeliveryStatus.QUIET_HOURS
                else:
                    recent = NotificationDelivery.objects.filter(
                        user_id=sub.user_id,
                        created_at__gt=now - timedelta(hours=1),
                        created_at__lte=now,
                        status__in=COUNTED_STATUSES,
                    ).count()
                    if recent >= per_hour_limit():
                        status = DeliveryStatus.RATE_LIMITED
                subject, body = render(alarm, channel, sub.timezone)
                try:
                    with transaction.atomic():
                        delivery = NotificationDelivery.objects.create(
                            alarm=alarm,
                            subscription=sub,
                            user_id=sub.user_id,
                            organisation_id=alarm.organisation_id,
                            channel=channel,
                            recipient=recipient,
                            subject=subject,
                            body=body,
                            status=status,
                            created_at=now,
                        )
                except IntegrityError:
                    continue  # planned concurrently by another task
                if status == DeliveryStatus.PENDING:
                    to_send.append(delivery)
    return to_send


def _transmit(delivery: NotificationDelivery) -> str:
    """Send one message; returns the gateway id. Raises sms.SmsError on failure."""
    if delivery.channel == DeliveryChannel.EMAIL:
        try:
            EmailMessage(
                delivery.subject, delivery.body, settings.DEFAULT_FROM_EMAIL, [delivery.recipient]
            ).send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise sms.SmsError(f"recipient refused: {exc}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise sms.SmsError(f"mail server: {exc!r}") from None
        return ""
    return sms.get_backend().send(delivery.recipient, delivery.body)


def send_delivery(delivery_id: int, *, now: datetime | None = None) -> str:
    """Send one pending delivery at most once; returns its new status.

    Raises `RetryLater` when the gateway failed and another attempt is allowed.
    """
    with transaction.atomic():
        delivery = NotificationDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return delivery.status if delivery else "missing"
        delivery.status = DeliveryStatus.SENDING
        delivery.attempts += 1
        delivery.save(update_fields=["status", "attempts"])
    try:
        gateway_id = _transmit(delivery)
    except sms.SmsError as exc:
        again = exc.retryable and delivery.attempts < max_attempts()
        delivery.status = DeliveryStatus.PENDING if again else DeliveryStatus.FAILED
        delivery.last_error = str(exc)[:2000]
        delivery.save(update_fields=["status", "last_error"])
        if again:
            raise RetryLater(delivery.attempts) from None
        return delivery.status
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = _aware(now)
    delivery.gateway_id = gateway_id or ""
    delivery.last_error = ""
    delivery.save(update_fields=["status", "sent_at", "gateway_id", "last_error"])
    return delivery.status


def queue_sends(deliveries: list[NotificationDelivery]) -> None:
    """Start one send task per pending delivery, after the current transaction commits."""
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: [send_notification.delay(pk) for pk in ids])


def customer_contacts(customers, now: datetime) -> dict[int, list[tuple[str, str]]]:
    """{customer id: [(channel, recipient)]}: the slot AMI_CUSTOMER_CONTACTS fills (by name,
    as AMI_PANELS: the app that keeps customers' preferences), else e-mail and phone."""
    customers = list(customers)
    name = getattr(settings, "AMI_CUSTOMER_CONTACTS", "")
    if name:
        return import_string(name)(customers, now=now)
    return {
        c.pk: [
            (ch, to)
            for ch, to in ((DeliveryChannel.EMAIL, c.email), (DeliveryChannel.SMS, c.phone))
            if to
        ]
        for c in customers
    }


def notify_customers_of_outage(node, *, now: datetime | None = None) -> int:
    """Tell customers below `node` whose meter has an open power failure; returns rows queued.

    Off unless `AMI_NOTIFY_CUSTOMERS_OF_OUTAGES` is set. Whom and how: the callable that
    `AMI_CUSTOMER_CONTACTS` names (the portal's preferences: channels, quiet hours), else
    Customer.email / phone as they are. One message per
    (alarm, customer, channel), like subscriptions.
    """
    if not getattr(settings, "AMI_NOTIFY_CUSTOMERS_OF_OUTAGES", False):
        return 0
    now = _aware(now)
    open_failures = {
        a.service_point_id: a
        for a in Alarm.objects.filter(
            kind=EventKind.POWER_FAILURE,
            state__in=OPEN_STATES,
            service_point__path__startswith=node.path,
        ).select_related("meter", "organisation", "service_point", "rule")
    }
    customers = list(
        Customer.objects.filter(service_point_id__in=open_failures).select_related(
            "service_point", "portal_user"
        )
    )
    created = []
    contacts = customer_contacts(customers, now)
    with transaction.atomic():
        for customer in customers:
            alarm = open_failures[customer.service_point_id]
            since = alarm.first_event_at.astimezone(ZoneInfo(settings.TIME_ZONE))
            text = (
                f"Power outage at {customer.service_point.address or customer.service_point.code}"
                f" since {since:%H:%M}. We are working on it."
            )
            for channel, recipient in contacts[customer.pk]:
                if not recipient:
                    continue
                try:
                    with transaction.atomic():
                        created.append(
                            NotificationDelivery.objects.create(
                                alarm=alarm,
                                customer=customer,
                                organisation_id=alarm.organisation_id,
                                channel=channel,
                                recipient=recipient,
                                subject="Power outage in your area",
                                body=text[:160] if channel == DeliveryChannel.SMS else text,
                                created_at=now,
                            )
                        )
                except IntegrityError:
                    continue  # told already
        queue_sends(created)
    return len(created)


# ------------------------------------------------------------------ tasks
# Thin wrappers, here rather than in tasks.py: `actions` queues `notify_alarms` and
# `queue_sends` queues `send_notification`, and tasks.py sits above both (it runs the engine).


@shared_task(name="meters.notify_alarms", ignore_result=True)
def notify_alarms(alarm_ids: list[int]) -> int:
    """Plan the messages about new alarms and start sending them; returns how many."""
    deliveries = []
    for alarm in Alarm.objects.filter(pk__in=alarm_ids).order_by("pk"):
        deliveries += plan_deliveries(alarm)
    queue_sends(deliveries)
    return len(deliveries)


@shared_task(bind=True, name="meters.send_notification", ignore_result=True, max_retries=None)
def send_notification(self, delivery_id: int) -> str:
    """Send one message; a gateway failure is retried with backoff, a sent one never again."""
    try:
        return send_delivery(delivery_id)
    except RetryLater as exc:
        raise self.retry(countdown=backoff_seconds(exc.attempts)) from None
