"""What the portal keeps of its own: a customer login's e-mail check and its attempts.

`PortalLogin` hangs on the user of a customer who activated online: the address the
customer gave and when it was confirmed (password reset goes only to a confirmed
address). `Attempt` is one try at a door that guesses could open (activation, password
reset, e-mail confirmation): `portal.limits` counts the failed ones per key and per
address to slow guessing down.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from accounts.scoping import ScopedQuerySet


class PortalLogin(models.Model):
    """A customer's sign-in as the portal knows it (one per user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_login"
    )
    email = models.EmailField(blank=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(auto_now_add=True)
    activated_by = models.CharField(max_length=16, blank=True)  # "bill code" or "payment"

    class Meta:
        verbose_name = "portal login"

    def __str__(self) -> str:
        return f"portal login of {self.user_id}"

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None and bool(self.email)


class AttemptKind(models.TextChoices):
    ACTIVATION = "activation", "account activation"
    RESET = "reset", "password reset"
    VERIFY = "verify", "e-mail confirmation"


class Attempt(models.Model):
    """One try at a guessable door (see the module's docstring)."""

    kind = models.CharField(max_length=16, choices=AttemptKind.choices)
    key = models.CharField(max_length=200, blank=True)  # account number, serial or e-mail
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["kind", "key", "at"]),
            models.Index(fields=["kind", "ip_address", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} {'ok' if self.succeeded else 'failed'}"


class PaymentState(models.TextChoices):
    CREATED = "created", "created"
    PENDING = "pending", "waiting for the payment provider"
    PAID = "paid", "paid, token issued"
    FAILED = "failed", "failed or cancelled"


class Payment(models.Model):
    """A customer's online purchase of prepaid credit, through a payment provider.

    One row per attempt at the provider's checkout. The provider's confirmation (its
    webhook, or the sandbox's page) settles it exactly once: `portal.payments.settle` locks
    the row, and the vending sale is made with the idempotency key `portal-<reference>`,
    so a retried confirmation never issues a second token.
    """

    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(
        "meters.Customer", on_delete=models.PROTECT, related_name="portal_payments"
    )
    account = models.ForeignKey(
        "vending.PrepaidAccount", on_delete=models.PROTECT, related_name="portal_payments"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=16)
    provider_ref = models.CharField(max_length=200, blank=True)
    state = models.CharField(
        max_length=8, choices=PaymentState.choices, default=PaymentState.CREATED
    )
    detail = models.CharField(max_length=300, blank=True)
    sale = models.OneToOneField(
        "vending.Sale", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~models.Q(provider_ref=""),
                name="portal_payment_provider_ref_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} payment {self.reference} ({self.state})"


class PlannedOutage(models.Model):
    """Work that will switch a part of the grid off: customers below `node` see it ahead."""

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+", editable=False
    )
    node = models.ForeignKey(
        "meters.GridNode", on_delete=models.PROTECT, related_name="planned_outages",
        help_text="every service point below this node is off",
    )  # fmt: skip
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(help_text="the expected restoration")
    reason = models.CharField(max_length=200, help_text="shown to customers")
    cancelled = models.BooleanField(
        default=False,
        db_default=False,
        help_text="the work will not happen: the customers told are told so",
    )
    revision = models.PositiveIntegerField(
        default=1, db_default=1, editable=False,
        help_text="1, then one more at each change of its node, times or cancellation",
    )  # fmt: skip
    changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"
    CHANGES = ("node_id", "starts_at", "ends_at", "cancelled")  # what customers are told again

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="portal_planned_outage_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.node} {self.starts_at:%Y-%m-%d %H:%M}: {self.reason}"

    def save(self, *args, **kwargs):
        """A change of node, times or cancellation is a new revision (customers are told
        again: `portal.outages.notify_planned`); the reason's wording is not."""
        self.organisation_id = self.node.organisation_id
        if self.pk is None:
            return super().save(*args, **kwargs)
        with transaction.atomic():
            stored = (
                PlannedOutage.objects.select_for_update()
                .filter(pk=self.pk)
                .values("revision", *self.CHANGES)
                .first()
            )
            if stored is not None:
                self.revision = stored["revision"]
                if any(stored[name] != getattr(self, name) for name in self.CHANGES):
                    self.revision += 1
                    self.changed_at = timezone.now()
                if kwargs.get("update_fields") is not None:
                    kwargs["update_fields"] = {*kwargs["update_fields"], "revision", "changed_at"}
            super().save(*args, **kwargs)


class OutagePreference(models.Model):
    """How a customer wants to hear of outages at home (none: both channels, any hour)."""

    customer = models.OneToOneField(
        "meters.Customer", on_delete=models.CASCADE, related_name="outage_preference"
    )
    by_sms = models.BooleanField("by SMS", default=True)
    by_email = models.BooleanField("by e-mail", default=True)
    planned = models.BooleanField("planned work ahead of time", default=True)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "customer__organisation"

    def __str__(self) -> str:
        return f"outage preference of {self.customer_id}"

    def quiet_at(self, local_time) -> bool:
        """Within the quiet hours [start, end) (they may wrap midnight)."""
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local_time < self.quiet_end
        return local_time >= self.quiet_start or local_time < self.quiet_end


class BillQuerySet(ScopedQuerySet):
    """Bills are issued once and never change: no bulk update either."""

    def update(self, **kwargs):
        raise BillIsFinal("an issued bill never changes")


class BillIsFinal(Exception):
    """A stored bill was about to be changed (it is issued once, immutable)."""


class Bill(models.Model):
    """A customer's bill of one month, issued once from the billing determinants and kept.

    `portal.bills.issue` computes it (`reports.billing` determinants priced with the tariff)
    and stores what the bill says, as issued: the figures in columns for the history and
    every line, note and name in `content`, so its page and PDF show the same bill later
    whatever happens to reads, tariffs or the customer's name since. Saving an issued row
    again (or a queryset update) raises `BillIsFinal`; one row per customer and month.
    """

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+", editable=False
    )
    customer = models.ForeignKey(
        "meters.Customer", on_delete=models.PROTECT, related_name="portal_bills"
    )
    month = models.DateField(help_text="the first local day of the billed month")
    issued_at = models.DateTimeField()
    account_number = models.CharField(max_length=64)
    billed_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    estimated = models.BooleanField(default=False, help_text="carries a note of estimation")
    held = models.BooleanField(default=False, help_text="held for the utility's review")
    content = models.JSONField(help_text="lines, charges, notes and names as issued")

    objects = BillQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-month", "customer_id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "month"], name="portal_bill_once_a_month")
        ]

    def __str__(self) -> str:
        return f"bill {self.month:%Y-%m} of {self.account_number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise BillIsFinal(f"{self} is issued and never changes")
        super().save(*args, **kwargs)


class NoticeState(models.TextChoices):
    PENDING = "pending", "to send"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"
    # "outdated", not "superseded": the column stays 8 wide (no ALTER TYPE on a live table)
    SUPERSEDED = "outdated", "not sent: the work changed first"


class PlannedOutageNotice(models.Model):
    """One customer told of one revision of a planned outage on one channel (never twice:
    unique); a change of the work (a new revision) is told again, once."""

    planned_outage = models.ForeignKey(
        PlannedOutage, on_delete=models.CASCADE, related_name="notices"
    )
    customer = models.ForeignKey(
        "meters.Customer", on_delete=models.CASCADE, related_name="planned_outage_notices"
    )
    channel = models.CharField(max_length=8)  # "sms" or "email" (portal.outages)
    revision = models.PositiveIntegerField(
        default=1, db_default=1, help_text="of the planned outage"
    )
    news = models.CharField(
        max_length=10, default="first", db_default="first",
        help_text="first word of the work, changed, away (no longer cuts here) or cancelled",
    )  # fmt: skip
    recipient = models.CharField(max_length=254)
    body = models.TextField()
    state = models.CharField(max_length=8, choices=NoticeState.choices, default=NoticeState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "planned_outage__organisation"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["planned_outage", "customer", "channel", "revision"],
                name="portal_planned_notice_once_a_revision",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} to customer {self.customer_id} of {self.planned_outage_id}"


class SimilarHomes(models.Model):
    """The average home of one customer class in one grid area over one period (precomputed).

    Written only by `portal.similar.compute` (the beat task `portal.compute_similar_homes`,
    and the demo's seeding); the usage views only read it. `kwh` is the average per home:
    each local day's kWh summed over the homes with readings that day, divided by their
    number, summed over the period's days; `homes` is the most homes seen on a day of it.
    """

    area = models.ForeignKey(
        "meters.GridNode", on_delete=models.CASCADE, related_name="+",
        help_text="the feeder above the homes (their transformer where there is no feeder)",
    )  # fmt: skip
    tariff_code = models.CharField(max_length=32, help_text="the customer class")
    kind = models.CharField(max_length=5)  # day, week, month, year (portal.usage.KINDS)
    first = models.DateField()
    last = models.DateField()
    kwh = models.DecimalField(max_digits=14, decimal_places=3)
    homes = models.PositiveIntegerField()
    computed_at = models.DateTimeField(help_text="the figure is as of this time")

    objects = ScopedQuerySet.as_manager()
    scope_field = "area__organisation"

    class Meta:
        verbose_name_plural = "similar homes"
        constraints = [
            models.UniqueConstraint(
                fields=["area", "tariff_code", "kind", "first"], name="portal_similar_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tariff_code} homes of {self.area_id}, {self.kind} of {self.first}"
