"""Alarms: rules that turn events into alarms, the alarms themselves, and who hears of them.

Models of the `meters` app (meters/models.py imports them by name; their tables keep the
`meters_` prefix).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet, scope_q

from ..coverage import MeterCoverage
from .events import EventKind, describe_alarm_event

__all__ = [
    "Severity",
    "AlarmState",
    "DeliveryChannel",
    "DeliveryStatus",
    "AlarmRule",
    "Alarm",
    "AlarmOccurrence",
    "AlarmSubscription",
    "NotificationDelivery",
]


class Severity(models.IntegerChoices):
    INFO = 10, "Info"
    MINOR = 20, "Minor"
    MAJOR = 30, "Major"
    CRITICAL = 40, "Critical"


class AlarmState(models.TextChoices):
    RAISED = "raised", "Raised"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CLEARED = "cleared", "Cleared"


OPEN_STATES = (AlarmState.RAISED, AlarmState.ACKNOWLEDGED)


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"
    RATE_LIMITED = "rate_limited", "Not sent: rate limit"
    QUIET_HOURS = "quiet_hours", "Not sent: quiet hours"


def _kinds_valid(value) -> None:
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise ValidationError("a list of event kinds")
    unknown = sorted(set(value) - set(EventKind.values))
    if unknown:
        raise ValidationError(f"unknown event kinds: {', '.join(unknown)}")


class AlarmRule(MeterCoverage):
    """Which events of which meters (grid subtree, meter model) raise an alarm, how severe.

    Its organisation and meter-model filter, scoping and the node's check come from
    `MeterCoverage` (as a report definition's)."""

    name = models.CharField(max_length=200)
    kinds = models.JSONField(
        default=list, validators=[_kinds_valid], help_text="event kinds; empty: none"
    )
    grid_node = models.ForeignKey(
        "meters.GridNode",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="only meters below this node (empty: the whole organisation)",
    )
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, default=Severity.MAJOR)
    dedup_window_s = models.PositiveIntegerField(
        "de-duplication window (s)",
        default=3600,
        help_text="a repeat after an acknowledgement and this long a pause raises it again",
    )
    subtree = models.BooleanField(
        "also sub-organisations",
        default=True,
        help_text="raise for the meters of organisations below this one too (default rules: "
        "each organisation has its own, so they cover its own meters only)",
    )
    default_key = models.CharField(
        max_length=40,
        blank=True,
        editable=False,
        help_text="which default rule this is (meters/alarms/defaults.py); empty: made by hand",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["organisation", "name"]

    def __str__(self) -> str:
        return self.name


class Alarm(models.Model):
    """A condition on one meter -- or on one shared line or concentrator, for a fault of the
    line rather than of each meter on it, or on something of the system's own, such as a
    report's mail that could not be delivered -- someone should look at: raised,
    acknowledged, cleared. At most one of ``meter`` and ``line`` is set; with neither,
    ``reference`` names what the alarm is on and ``link`` is its page."""

    rule = models.ForeignKey(AlarmRule, on_delete=models.PROTECT, related_name="alarms")
    meter = models.ForeignKey(
        "meters.Meter", null=True, blank=True, on_delete=models.PROTECT, related_name="alarms"
    )
    # Indexed by `alarm_line_idx` (built concurrently: the alarm table is a live one).
    line = models.ForeignKey(
        "meters.CommLine",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alarms",
        db_index=False,
    )
    # A system alarm's subject (meters/alarms/system.py): neither a meter nor a line.
    reference = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text='what a system alarm is on, e.g. "report delivery 12 to ops@example.com"',
    )
    link = models.CharField(
        max_length=200, blank=True, default="", db_default="", help_text="its page (a path)"
    )
    # Denormalised from the meter when raised: scoping is one filter, grouping needs no join.
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    service_point = models.ForeignKey(
        "meters.GridNode", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=40, choices=EventKind.choices, db_index=True)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    state = models.CharField(
        max_length=16, choices=AlarmState.choices, default=AlarmState.RAISED, db_index=True
    )
    count = models.PositiveIntegerField(default=0, help_text="events folded into this alarm")
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    last_code = models.IntegerField(null=True, blank=True, help_text="the meter's own code")
    raised_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ack_comment = models.TextField(blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    clear_comment = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-last_event_at", "-pk"]
        constraints = [
            # At most one open alarm per (rule, meter, kind): the backstop of de-duplication.
            models.UniqueConstraint(
                fields=["rule", "meter", "kind"],
                condition=Q(state__in=["raised", "acknowledged"]),
                name="alarm_one_open_per_rule_meter_kind",
            ),
            models.CheckConstraint(
                condition=(Q(meter__isnull=True) ^ Q(line__isnull=True))
                | (Q(meter__isnull=True, line__isnull=True) & ~Q(reference="")),
                name="alarm_on_a_meter_a_line_or_a_reference",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "state"]),
            models.Index(fields=["meter", "kind", "state"]),
            # A line's alarms (few: one per line outage). One open alarm per (rule, line) is
            # kept by the line's row lock its raiser holds (meters/alarms/lines.py), not by a
            # unique index: that would be built on the live alarm table under a lock.
            models.Index(
                fields=["line", "kind", "state"],
                condition=Q(line__isnull=False),
                name="alarm_line_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.subject} ({self.get_state_display()})"

    @property
    def subject(self) -> str:
        """What the alarm is on: "meter 90000001", "line DC-A11" or its reference."""
        if self.meter_id is not None:
            return f"meter {self.meter.serial}"
        return f"line {self.line}" if self.line_id is not None else self.reference or "nothing"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def last_event(self) -> str:
        """The latest event's name ("Power down", "Meter cover opened"), not its code."""
        return describe_alarm_event(self)


class AlarmOccurrence(models.Model):
    """One event counted into an alarm by one rule: what makes evaluation idempotent."""

    rule = models.ForeignKey(AlarmRule, on_delete=models.CASCADE, related_name="+")
    alarm = models.ForeignKey(Alarm, on_delete=models.CASCADE, related_name="occurrences")
    meter_id = models.BigIntegerField()
    log = models.CharField(max_length=32)
    ts = models.DateTimeField()
    code = models.IntegerField()

    objects = ScopedQuerySet.as_manager()
    scope_field = "alarm__organisation"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "meter_id", "log", "ts", "code"], name="alarm_occurrence_once"
            )
        ]

    def __str__(self) -> str:
        return f"alarm {self.alarm_id}: event {self.code} at {self.ts:%Y-%m-%d %H:%M}Z"


class OwnRowsQuerySet(ScopedQuerySet):
    """A user's own rows (within their scope); superusers see every row."""

    def restrict(self, user, action: str = "view"):
        q = scope_q(user, self.model, action)
        if user is not None and user.is_authenticated and not user.is_superuser:
            q &= Q(user=user)
        return self.filter(q)


def _default_timezone() -> str:
    return settings.TIME_ZONE


class AlarmSubscription(models.Model):
    """A user's wish to hear of alarms (kinds, severity, subtree) by e-mail and/or SMS.

    Quiet hours are local time in `timezone`; during them nothing is sent, except critical
    alarms when `critical_overrides_quiet` (the default) is set.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alarm_subscriptions"
    )
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="alarms of this organisation's subtree",
    )
    grid_node = models.ForeignKey(
        "meters.GridNode", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kinds = models.JSONField(default=list, blank=True, validators=[_kinds_valid])
    min_severity = models.PositiveSmallIntegerField(
        choices=Severity.choices, default=Severity.MAJOR
    )
    by_email = models.BooleanField(default=True)
    by_sms = models.BooleanField(default=False)
    email = models.EmailField(blank=True, help_text="empty: the user's own address")
    phone = models.CharField(max_length=32, blank=True, help_text="international, e.g. +2782...")
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default=_default_timezone)
    critical_overrides_quiet = models.BooleanField(default=True)
    active = models.BooleanField(default=True)

    objects = OwnRowsQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["user", "pk"]

    def __str__(self) -> str:
        return f"{self.user} on {self.organisation}"

    def clean(self):
        super().clean()
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"timezone": "Unknown time zone."}) from None
        if self.by_sms and not self.phone:
            raise ValidationError({"phone": "SMS needs a phone number."})


class NotificationDelivery(models.Model):
    """One message about one alarm to one recipient on one channel, and what became of it."""

    alarm = models.ForeignKey(Alarm, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(
        AlarmSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    customer = models.ForeignKey(
        "meters.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=8, choices=DeliveryChannel.choices)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    gateway_id = models.CharField(max_length=100, blank=True, help_text="message id, if any")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Never twice: one row per alarm, subscription (or customer) and channel.
            models.UniqueConstraint(
                fields=["alarm", "subscription", "channel"],
                condition=Q(subscription__isnull=False),
                name="delivery_once_per_subscription",
            ),
            models.UniqueConstraint(
                fields=["alarm", "customer", "channel"],
                condition=Q(customer__isnull=False),
                name="delivery_once_per_customer",
            ),
        ]
        indexes = [models.Index(fields=["user", "created_at"])]
        verbose_name_plural = "notification deliveries"

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.recipient}: {self.get_status_display()}"
