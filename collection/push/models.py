"""Push listener records: dropped messages and the replay guard's durable counters."""

from __future__ import annotations

from django.db import models

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet
from meters.models import Meter

from .choices import PushRejectReason

__all__ = ["PushCounter", "PushRejection"]


class PushRejection(models.Model):
    """Pushes the listener dropped for one reason from one peer within one minute."""

    reason = models.CharField(max_length=16, choices=PushRejectReason.choices, db_index=True)
    peer = models.CharField(max_length=64, help_text="IP address of the sending side")
    first_at = models.DateTimeField(db_index=True)
    last_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=1)
    system_title = models.CharField(max_length=16, blank=True, help_text="hex, as received")
    logical_device = models.CharField(max_length=64, blank=True)
    meter = models.ForeignKey(
        Meter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The claimed meter's organisation; empty for unknown senders (only superusers see those).
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.CharField(max_length=200, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-first_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} from {self.peer} at {self.first_at:%Y-%m-%d %H:%M}Z"


class PushCounter(models.Model):
    """The highest invocation counter handled from a meter's ciphered pushes (replay guard)."""

    meter = models.OneToOneField(
        Meter, primary_key=True, on_delete=models.CASCADE, related_name="push_counter"
    )
    # Fingerprint of (block key, meter system title): new keys restart the counter.
    key_id = models.CharField(max_length=32)
    last_ic = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "meter__organisation"

    def __str__(self) -> str:
        return f"{self.meter}: {self.last_ic}"
