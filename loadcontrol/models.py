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


class Recurrence(models.TextChoices):
    ONCE = "once", "Once"
    DAILY = "daily", "Every day"
    WEEKLY = "weekly", "Every week on the chosen days"


class ScheduleState(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    ACTIVE = "active", "Active"
    CANCELLED = "cancelled", "Cancelled"


class LoadSchedule(models.Model):
    """Planned load control: the supply of a set of meters (or a grid subtree) is off from a
    local date and time for a duration, once or recurring, and restored at the end.

    Times are the utility's (`AMI_TIME_ZONE`) across daylight-saving changes
    (loadcontrol/recurrence.py). Above `AMI_COMMAND_APPROVAL_THRESHOLD` meters it waits for
    a second person's approval, like a bulk command."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    meter_ids = models.JSONField(default=list, help_text="the meters it switches")
    target = models.JSONField(default=dict, blank=True, help_text="how the meters were chosen")
    starts_on = models.DateField(help_text="first local day")
    at = models.TimeField(help_text="local start time")
    duration_minutes = models.PositiveIntegerField()
    recurrence = models.CharField(max_length=8, choices=Recurrence.choices, default=Recurrence.ONCE)
    weekdays = models.JSONField(default=list, blank=True, help_text="0 Monday .. 6 Sunday")
    until = models.DateField(null=True, blank=True, help_text="last local day a slot starts")
    reason = models.TextField()
    state = models.CharField(
        max_length=16, choices=ScheduleState.choices, default=ScheduleState.ACTIVE
    )
    created_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def origin(self) -> str:
        return f"schedule:{self.pk}"

    @property
    def size(self) -> int:
        return len(self.meter_ids)


class SlotState(models.TextChoices):
    PLANNED = "planned", "Planned"
    OFF = "off", "Supply off"
    RESTORED = "restored", "Restored"
    MISSED = "missed", "Missed (the scheduler was not running)"
    CANCELLED = "cancelled", "Cancelled"


class LoadSlot(models.Model):
    """One occurrence of a schedule, in UTC: switched off once and restored once."""

    schedule = models.ForeignKey(LoadSchedule, on_delete=models.CASCADE, related_name="slots")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True)
    state = models.CharField(
        max_length=16, choices=SlotState.choices, default=SlotState.PLANNED, db_index=True
    )
    switched = models.JSONField(
        default=list, blank=True, help_text="meters this slot switched off (and restores)"
    )
    left_alone = models.JSONField(
        default=list, blank=True, help_text="meters already off for another reason"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "starts_at"], name="one_slot_per_start")
        ]

    def __str__(self) -> str:
        return f"{self.schedule} at {self.starts_at:%Y-%m-%d %H:%M} UTC"
