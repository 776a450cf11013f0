"""Choices of the collection app: what a read job reads, run and per-meter states."""

from django.db import models


class ReadItem(models.TextChoices):
    CLOCK = "clock", "Clock check"
    REGISTERS = "registers", "Billing registers"
    PROFILE = "profile", "Load profile"
    EVENTS = "events", "Event logs"
    INSTANTANEOUS = "instantaneous", "Instantaneous values"
    RELAY = "relay", "Relay state"


class RunKind(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    MANUAL = "manual", "Started by hand"
    ON_DEMAND = "on_demand", "On-demand read"
    REREAD = "reread", "Re-read of a period"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"


class ResultStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Reading"
    OK = "ok", "Read"
    FAILED = "failed", "Failed"
