"""Models of the reports app: queued exports of the data query."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    """A data-query export too large to answer at once, built by a task into MEDIA_ROOT."""

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    fmt = models.CharField("format", max_length=8)
    params = models.JSONField(default=dict, help_text="the query, as the page sent it")
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    rows_estimated = models.PositiveBigIntegerField(default=0)
    rows_done = models.PositiveBigIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True, help_text="path below MEDIA_ROOT")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.fmt}, {self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.DONE:
            return 100
        return (
            min(99, int(100 * self.rows_done / self.rows_estimated)) if self.rows_estimated else 0
        )
