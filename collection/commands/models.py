"""The command row: one change (or query) asked of one meter, with its whole life."""

from __future__ import annotations

from django.db import models

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet
from meters.models import Meter

from .kinds import LABELS, PRIORITY_NORMAL


class CommandState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


CommandKind = models.TextChoices(
    "CommandKind", [(k.value, (k.value, v)) for k, v in LABELS.items()]
)
FINAL_STATES = (
    CommandState.CONFIRMED,
    CommandState.FAILED,
    CommandState.EXPIRED,
    CommandState.CANCELLED,
)


class MeterCommand(models.Model):
    """One command to one meter: who asked and why, its progress, what the meter answered."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=CommandKind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=CommandState.choices, default=CommandState.QUEUED, db_index=True
    )
    priority = models.PositiveSmallIntegerField(default=PRIORITY_NORMAL, help_text="higher first")
    reason = models.TextField(blank=True, help_text="why it was asked")
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(help_text="not sent after this; a sent one fails after it")
    not_before = models.DateTimeField(null=True, blank=True, help_text="next attempt (backoff)")
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    claim = models.CharField(
        max_length=64, blank=True, help_text="the task that sent it (a redelivery knows itself)"
    )
    origin = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="what asked for it beyond one person: bulk:<id>, schedule:<id>, prepaid:<id>",
    )
    answer = models.JSONField(default=dict, blank=True, help_text="what the meter read back")
    error_kind = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["meter", "state"], name="command_meter_state")]
        # Switching a customer's supply is a role of its own (operators, administrators):
        # adding a command is not enough for connect and disconnect.
        permissions = [("switch_relay", "Can connect and disconnect supply")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.meter} ({self.get_state_display()})"

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES
