"""Models of the reports app: queued exports of the data query; report definitions, their
versions, runs, schedules and deliveries."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet
from amisite.encryption import EncryptedTextField
from meters.coverage import MeterCoverage

from .exchange.folders import FOLDER_NAME
from .exchange.sftp import sftp_problems


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class FileProduct(models.Model):
    """A file a task builds for an organisation (a data-query export, a report run): its
    status and progress, its path below MEDIA_ROOT, the error, when it was asked for and
    finished; newest first, scoped by its organisation (abstract: no table of its own)."""

    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    rows_done = models.PositiveBigIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True, help_text="path below MEDIA_ROOT")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class ExportJob(FileProduct):
    """A data-query export too large to answer at once, built by a task into MEDIA_ROOT."""

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    fmt = models.CharField("format", max_length=8)
    params = models.JSONField(default=dict, help_text="the query, as the page sent it")
    rows_estimated = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"export {self.pk} ({self.fmt}, {self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.DONE:
            return 100
        return (
            min(99, int(100 * self.rows_done / self.rows_estimated)) if self.rows_estimated else 0
        )


# ------------------------------------------------------------------ report definitions
# A definition names a built-in source (reports/engine.py SOURCES) and how to run it; every
# save is a new ReportVersion, and a run records the version it used. Schedules run a
# definition on a beat entry and mail the file to staff of its organisation.


class PeriodKind(models.TextChoices):
    LAST_MONTH = "last_month", "Last month"
    THIS_MONTH = "this_month", "This month to yesterday"
    YESTERDAY = "yesterday", "Yesterday"
    LAST_7_DAYS = "last_7_days", "The last 7 days"
    LAST_30_DAYS = "last_30_days", "The last 30 days"
    FIXED = "fixed", "Fixed days"


class RunFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"
    PDF = "pdf", "PDF"
    XML = "xml", "XML"


class ReportDefinition(MeterCoverage):
    """A stored report: a built-in source with filters, grouping, columns, period and graph.

    Its organisation and meter-model filter come from `MeterCoverage` (as an alarm rule's),
    its grid-node filter is `node`."""

    node_field = "node"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=32, help_text="a built-in report (reports/engine.py)")
    node = models.ForeignKey(
        "meters.GridNode",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="only this part of the grid (empty: everything in the organisation)",
    )
    customer_class = models.CharField(
        max_length=32, blank=True, help_text="only meters supplying this tariff code"
    )
    grouping = models.CharField(max_length=32, blank=True)
    columns = models.JSONField(default=list, blank=True, help_text="column keys; empty: all")
    quantities = models.JSONField(
        default=list,
        blank=True,
        db_default=[],
        help_text="the data query's quantities (OBIS codes); other reports take none",
    )
    period = models.CharField(
        max_length=16, choices=PeriodKind.choices, default=PeriodKind.LAST_MONTH
    )
    period_from = models.DateField(null=True, blank=True)
    period_to = models.DateField(null=True, blank=True)
    graph = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=0, editable=False)
    builtin = models.CharField(
        max_length=32, blank=True, editable=False, help_text="the built-in this was seeded from"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "builtin"],
                condition=~models.Q(builtin=""),
                name="report_one_builtin_per_organisation",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ReportVersion(models.Model):
    """What a definition said at one save (read-only once written)."""

    definition = models.ForeignKey(
        ReportDefinition, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    snapshot = models.JSONField(help_text="the definition's fields at this save")
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    saved_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "definition__organisation"

    class Meta:
        ordering = ["definition", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "number"], name="report_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.definition} v{self.number}"


class ScheduleFrequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class ReportSchedule(models.Model):
    """Run a definition daily, weekly or monthly (the utility's time) and mail the file."""

    definition = models.ForeignKey(
        ReportDefinition, on_delete=models.CASCADE, related_name="schedules"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="+", editable=False
    )
    frequency = models.CharField(
        max_length=8, choices=ScheduleFrequency.choices, default=ScheduleFrequency.MONTHLY
    )
    at = models.TimeField("time of day", help_text="in the utility's time zone")
    weekday = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(6)], help_text="weekly: 0 Monday .. 6 Sunday"
    )
    day_of_month = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
        help_text="monthly: 1 to 28",
    )
    fmt = models.CharField("format", max_length=8, choices=RunFormat.choices, default="xlsx")
    recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", help_text="staff of the organisation"
    )
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="the runs are built with this user's scope",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["definition", "pk"]

    def __str__(self) -> str:
        return f"{self.definition} ({self.describe()})"

    def describe(self) -> str:
        at = f"{self.at:%H:%M}"
        if self.frequency == ScheduleFrequency.DAILY:
            return f"daily at {at}"
        if self.frequency == ScheduleFrequency.WEEKLY:
            days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
            return f"{days[self.weekday]}s at {at}"
        return f"monthly on day {self.day_of_month} at {at}"


class ReportRun(FileProduct):
    """One run of a definition's version into a file (built by a task, with progress)."""

    definition = models.ForeignKey(ReportDefinition, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(ReportVersion, on_delete=models.RESTRICT, related_name="runs")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    schedule = models.ForeignKey(
        ReportSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fmt = models.CharField("format", max_length=8, choices=RunFormat.choices)
    first_day = models.DateField(null=True, blank=True)
    last_day = models.DateField(null=True, blank=True)
    size = models.PositiveBigIntegerField(default=0, help_text="bytes")

    def __str__(self) -> str:
        return f"run {self.pk} of {self.definition} v{self.version.number}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class ReportDelivery(models.Model):
    """One recipient's mail of a scheduled run: sent or failed, with the error."""

    run = models.ForeignKey(ReportRun, on_delete=models.CASCADE, related_name="deliveries")
    schedule = models.ForeignKey(
        ReportSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    email = models.EmailField()
    status = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attached = models.BooleanField(default=True, help_text="the file attached, else a link")
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "report deliveries"
        constraints = [
            models.UniqueConstraint(fields=["run", "recipient"], name="report_delivery_once")
        ]

    def __str__(self) -> str:
        return f"{self.email}: {self.get_status_display()}"


# ------------------------------------------------------------------ file exchange
# IEC 61968-9 (CIM) files dropped into a folder per organisation (reports/exchange/): daily
# MeterReadings, EndDeviceEvents and MeterConfig exports into outgoing/, and MeterConfig
# imports picked up from incoming/. Every file written or read is one ExchangeLog row.


class ExchangeKind(models.TextChoices):
    FOLDER = "folder", "Local folder"
    SFTP = "sftp", "SFTP server"


class ExchangeTarget(models.Model):
    """An organisation's exchange folder (below AMI_EXCHANGE_ROOT) and its daily exports; an
    SFTP target mirrors the folder's files to and from a third party's server."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ExchangeKind.choices, default="folder")
    folder = models.CharField(
        max_length=100,
        unique=True,
        help_text="below the exchange root: letters, digits, '-' and '_' (one folder per target)",
    )
    run_as = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="staff of the organisation: exports show and imports change what they may",
    )
    export_readings = models.BooleanField("export MeterReadings", default=True)
    export_events = models.BooleanField("export EndDeviceEvents", default=True)
    export_config = models.BooleanField("export MeterConfig", default=False)
    imports = models.BooleanField("import MeterConfig from incoming/", default=True)
    at = models.TimeField(
        "export time", help_text="daily, in the utility's time zone: the previous day's files"
    )
    enabled = models.BooleanField(default=True)
    retention_days = models.PositiveSmallIntegerField(
        "keep exports (days)", default=30, db_default=30,
        validators=[MaxValueValidator(3650)],
        help_text="files in outgoing/ (here and on an SFTP server) older than this are removed "
        "at the daily export; 0 keeps them",
    )  # fmt: skip
    # SFTP (kind "sftp", reports/exchange/remote.py): the server's outgoing/, incoming/,
    # processed/ and rejected/ below `sftp_directory`; the local folder keeps a copy of each.
    sftp_host = models.CharField("SFTP host", max_length=255, blank=True, default="",
                                 db_default="")  # fmt: skip
    sftp_port = models.PositiveIntegerField(
        "SFTP port", default=22, db_default=22, validators=[MinValueValidator(1),
                                                            MaxValueValidator(65535)]
    )  # fmt: skip
    sftp_user = models.CharField("SFTP user", max_length=100, blank=True, default="",
                                 db_default="")  # fmt: skip
    sftp_password = EncryptedTextField(
        "SFTP password", blank=True, default="", db_default="",
        help_text="encrypted at rest; never displayed once stored",
    )  # fmt: skip
    sftp_private_key = EncryptedTextField(
        "SFTP private key", blank=True, default="", db_default="",
        help_text="OpenSSH or PEM private key without a passphrase (encrypted at rest); used "
        "instead of the password when set",
    )  # fmt: skip
    sftp_host_key = models.CharField(
        "SFTP host key fingerprint", max_length=100, blank=True, default="", db_default="",
        help_text="SHA256:... as `ssh-keygen -lf` shows it; any other host key is refused",
    )  # fmt: skip
    sftp_directory = models.CharField(
        "SFTP directory", max_length=255, blank=True, default="", db_default="",
        help_text="on the server (blank: the login directory); outgoing/, incoming/, "
        "processed/ and rejected/ below it",
    )  # fmt: skip
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"
    SECRET_FIELDS = ("sftp_password", "sftp_private_key")  # masked in the activity log

    class Meta:
        ordering = ["organisation", "name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_sftp(self) -> bool:
        return self.kind == ExchangeKind.SFTP

    def remote_label(self) -> str:
        """Where the server's files are, without any secret: sftp://user@host:port/dir."""
        host = f"[{self.sftp_host}]" if ":" in self.sftp_host else self.sftp_host
        return f"sftp://{self.sftp_user}@{host}:{self.sftp_port}/{self.sftp_directory.strip('/')}"

    def clean(self):
        errors = {}
        if self.folder and not FOLDER_NAME.fullmatch(self.folder):
            errors["folder"] = "Use letters, digits, '-' and '_' only (1 to 100 characters)."
        user = self.run_as if self.run_as_id else None
        if user is not None and self.organisation_id:
            if user.is_superuser or user.organisation_id != self.organisation_id:
                errors["run_as"] = "Choose a staff user of the target's own organisation."
            elif not user.is_active:
                errors["run_as"] = "That user is inactive."
        if self.kind == ExchangeKind.SFTP:
            errors.update(sftp_problems(self))
        if errors:
            raise ValidationError(errors)


class ExchangeDirection(models.TextChoices):
    EXPORT = "export", "Export"
    IMPORT = "import", "Import"


class ExchangeState(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed (gave up)"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class ExchangeLog(models.Model):
    """One file written to or read from an exchange folder: what, when, and how it went.

    An export slot (target, document, day) has one row, whatever the number of attempts."""

    target = models.ForeignKey(ExchangeTarget, on_delete=models.CASCADE, related_name="log")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=8, choices=ExchangeDirection.choices)
    document = models.CharField(max_length=24, help_text="MeterReadings, EndDeviceEvents, ...")
    day = models.DateField(null=True, blank=True, help_text="exports: the day the file covers")
    filename = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=ExchangeState.choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0, help_text="bytes")
    sha256 = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(default=0, help_text="meters or events in the file")
    summary = models.CharField(max_length=300, blank=True)
    report = models.TextField(blank=True, help_text="imports: what was wrong, element by element")
    remote_name = models.CharField(
        max_length=255, blank=True, default="", db_default="",
        help_text="SFTP imports: the file's claimed name in the server's processing/",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="of the last attempt")
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "document", "day"],
                condition=models.Q(direction="export"),
                name="exchange_export_once_per_slot",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.filename} ({self.get_state_display()})"
