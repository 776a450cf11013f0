"""Models of the loadcontrol app: a bulk command waiting for (or given) a second approval."""

from __future__ import annotations

from django.db import models

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet
from collection.commands.models import CommandKind


class BulkState(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved (queued)"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class BulkCommand(models.Model):
    """One command for many meters of one organisation. Above
    `AMI_COMMAND_APPROVAL_THRESHOLD` meters it waits until a second person approves it;
    at or below, it is queued at once."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=CommandKind.choices)
    meter_ids = models.JSONField(default=list, help_text="the meters it is for")
    reason = models.TextField(blank=True)
    target = models.JSONField(
        default=dict,
        blank=True,
        help_text="how the meters were chosen: {'by': 'meters'|'node'|'filter', 'label': ...}",
    )
    state = models.CharField(max_length=16, choices=BulkState.choices, default=BulkState.PENDING)
    requested_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {len(self.meter_ids)} meters"

    @property
    def origin(self) -> str:
        """The tag its meter commands carry (MeterCommand.origin)."""
        return f"bulk:{self.pk}"

    @property
    def size(self) -> int:
        return len(self.meter_ids)
