"""Report definitions, versions, runs, schedules and deliveries of both regions, for the
generated tests (tests/test_every_route.py, tests/pages/site.py, the API matrix).

Region B's rows carry region B's markers (its organisation's name in the report's name, its
administrator as a recipient), so a door that shows them to region A fails the walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from django.urls import reverse

from reports import actions
from reports.models import (
    DeliveryState,
    ExportStatus,
    ReportDefinition,
    ReportDelivery,
    ReportRun,
    ReportSchedule,
)


@dataclass
class ReportRows:
    definition: ReportDefinition
    run: ReportRun
    schedule: ReportSchedule
    delivery: ReportDelivery
    exchange_target: object = None  # reports.models.ExchangeTarget
    exchange_log: object = None  # reports.models.ExchangeLog


def report_rows(org, author, recipient, node=None) -> ReportRows:
    definition = ReportDefinition(
        organisation=org, name=f"Tamper of {org.name}", source="tamper", node=node,
        period="fixed", period_from=date(2026, 5, 8), period_to=date(2026, 5, 14),
    )  # fmt: skip
    actions.save_definition(definition, author)
    definition.description = f"second version, for {org.name}"
    actions.save_definition(definition, author)
    recipient.email = recipient.email or f"{recipient.username}@example.invalid"
    recipient.save()
    schedule = actions.save_schedule(
        ReportSchedule(definition=definition, at=time(6, 30), frequency="weekly", weekday=0),
        author,
        [recipient],
    )
    run = ReportRun.objects.create(
        definition=definition, version=actions.current_version(definition), organisation=org,
        schedule=schedule, requested_by=author, fmt="csv", status=ExportStatus.FAILED,
        error="the disk is full",
    )  # fmt: skip
    delivery = ReportDelivery.objects.create(
        run=run, schedule=schedule, organisation=org, recipient=recipient,
        email=recipient.email, status=DeliveryState.FAILED, attempts=5,
        error="mail server: ConnectionRefusedError(111)",
    )  # fmt: skip
    target, row = exchange_rows(org, author)
    return ReportRows(definition, run, schedule, delivery, target, row)


def both_regions(world) -> tuple[ReportRows, ReportRows]:
    return (
        report_rows(world.org_a, world.readonly_a, world.admin_a, world.grid_a.transformer),
        report_rows(world.org_b, world.admin_b, world.admin_b, world.grid_b.transformer),
    )


def exchange_rows(org, run_as):
    """An exchange target and a rejected import of it (no folder on disk is needed); made
    once per organisation, whichever generated test asks first."""
    from reports.models import ExchangeLog, ExchangeTarget

    target, _ = ExchangeTarget.objects.get_or_create(
        folder=f"{org.code}-mdm",
        defaults={"organisation": org, "name": f"MDM of {org.name}", "run_as": run_as,
                  "at": time(2, 30)},
    )  # fmt: skip
    row, _ = ExchangeLog.objects.get_or_create(
        target=target, filename=f"{org.code}-meters.xml",
        defaults={"organisation": org, "direction": "import", "document": "MeterConfig",
                  "state": "rejected", "attempts": 1,
                  "summary": f"rejected: 1 problem(s) for {org.name}",
                  "report": f"{org.code}-meters.xml: rejected, nothing was imported "
                            f"({org.name})."},
    )  # fmt: skip
    return target, row


def report_pairs(world) -> dict:
    """{model: (region A's row, region B's)} for the route walk."""
    from reports.models import ReportVersion

    a, b = both_regions(world)
    from reports.models import ExchangeLog, ExchangeTarget

    return {
        ExchangeTarget: (a.exchange_target, b.exchange_target),
        ExchangeLog: (a.exchange_log, b.exchange_log),
        ReportDefinition: (a.definition, b.definition),
        ReportVersion: tuple(actions.current_version(r.definition) for r in (a, b)),
        ReportRun: (a.run, b.run),
        ReportSchedule: (a.schedule, b.schedule),
        ReportDelivery: (a.delivery, b.delivery),
    }


def report_cases(rows: ReportRows) -> dict[str, list[str]]:
    """The page tests' URLs of the report engine's pages that take an argument."""
    d, version = rows.definition, actions.current_version(rows.definition)
    first = d.versions.get(number=1)
    return {
        "reports:definition": [reverse("reports:definition", args=[d.pk])],
        "reports:definition-edit": [reverse("reports:definition-edit", args=[d.pk])],
        "reports:definition-delete": [reverse("reports:definition-delete", args=[d.pk])],
        "reports:definition-show": [reverse("reports:definition-show", args=[d.pk])],
        "reports:schedule-new": [reverse("reports:schedule-new", args=[d.pk])],
        "reports:version": [
            reverse("reports:version", args=[version.pk]),
            reverse("reports:version", args=[first.pk]),
        ],
        "reports:run": [reverse("reports:run", args=[rows.run.pk])],
        "reports:schedule": [reverse("reports:schedule", args=[rows.schedule.pk])],
        "reports:schedule-delete": [reverse("reports:schedule-delete", args=[rows.schedule.pk])],
        "reports:exchange-row": [reverse("reports:exchange-row", args=[rows.exchange_log.pk])],
    }
