"""Read jobs, their runs and per-meter outcomes, invocation counters.

Meter reachability (`CommStatus`) is the registry's (meters/models.py); collection writes it.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet
from meters.models import GridNode, Meter, MeterModel

from .choices import ReadItem, ResultStatus, RunKind, RunStatus


def default_items() -> list[str]:
    return [ReadItem.CLOCK, ReadItem.REGISTERS, ReadItem.PROFILE, ReadItem.EVENTS]


class ReadJob(models.Model):
    """What to read from which meters, how often and within which window."""

    name = models.CharField(max_length=200)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    items = models.JSONField(
        default=default_items, help_text="what to read: " + ", ".join(ReadItem.values)
    )
    grid_node = models.ForeignKey(
        GridNode,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="read every meter below this grid node",
    )
    meter_model = models.ForeignKey(
        MeterModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    meters = models.ManyToManyField(
        Meter, blank=True, related_name="+", help_text="or an explicit list"
    )
    meter_status = models.JSONField(default=list, blank=True, help_text="saved filter: statuses")
    crontab = models.CharField(
        max_length=100,
        default="15 1 * * *",
        help_text="minute hour day-of-month month day-of-week, in the utility's time zone",
    )
    every_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="or run every so many minutes instead of the crontab",
    )
    window_minutes = models.PositiveIntegerField(
        default=240, help_text="a run not finished this long after its start gives up"
    )
    backfill_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(366)],
        help_text="how far back a load profile is read when the store has a gap",
    )
    batch_size = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(1), MaxValueValidator(5000)]
    )
    concurrency = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(2000)],
        help_text="sessions at once in one task",
    )
    retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    retry_backoff_s = models.PositiveIntegerField(default=5)
    clock_drift_limit_s = models.PositiveIntegerField(default=30)
    sync_clock = models.BooleanField(
        default=False, help_text="set the clock when drift is over the limit"
    )
    clock_max_adjust_s = models.PositiveIntegerField(
        default=300, help_text="never move a clock by more than this automatically"
    )
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
    )

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobRun(models.Model):
    """One execution of a read job (or one on-demand read), with its progress counts."""

    job = models.ForeignKey(
        ReadJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=RunKind.choices, default=RunKind.SCHEDULED)
    items = models.JSONField(default=default_items)
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    values_stored = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.job or 'on-demand read'}"


class MeterReadResult(models.Model):
    """The outcome of reading one meter in one run; the raw exchange is kept when it failed."""

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="results")
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=16, choices=ResultStatus.choices, default=ResultStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    deliveries = models.PositiveSmallIntegerField(
        default=0, help_text="times a worker picked it up"
    )
    error_kind = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False)
    values_stored = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="what an on-demand read returned")
    exchange_log = models.TextField(blank=True, help_text="hex dump of the failed session")
    notes = models.TextField(blank=True, help_text="what the read had to work around")

    objects = ScopedQuerySet.as_manager()
    scope_field = "run__organisation"

    class Meta:
        ordering = ["run", "meter"]
        constraints = [
            models.UniqueConstraint(fields=["run", "meter"], name="one_result_per_meter_per_run")
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.meter} in run {self.run_id}: {self.status}"


class InvocationCounter(models.Model):
    """The next DLMS invocation counter per meter key; reserved before any frame is sent."""

    key = models.CharField(max_length=200, unique=True)
    next_value = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.key}: {self.next_value}"


from .push.models import *  # noqa
from .commands.models import *  # noqa
