"""The collection success report: per local day and job, feeder, transformer or meter model.

Read from collection's results as the reader may see them (`restrict(user, "view")`);
the page and its CSV are `views.CollectionReportView` at /reports/collection/.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from collection.choices import ResultStatus
from collection.models import MeterReadResult

from .exporters.table import csv_download, to_csv


def _with_rate(row: dict, group_key: str) -> dict:
    return {
        "day": row["day"],
        "group": row[group_key] or "on-demand reads",
        "scheduled": row["scheduled"],
        "ok": row["ok"],
        "missing": row["scheduled"] - row["ok"],
        "rate": round(100 * row["ok"] / row["scheduled"], 1) if row["scheduled"] else None,
    }


GROUPINGS = {
    "job": "run__job__name",
    "feeder": "meter__service_point__parent__parent__code",
    "transformer": "meter__service_point__parent__code",
    "model": "meter__meter_model__name",
}


def collection_success(user, *, group: str = "job", days: int = 7) -> list[dict]:
    """The collection success report: per local day and job / feeder / transformer / model."""
    key = GROUPINGS[group]
    since = timezone.now() - timedelta(days=days)
    rows = (
        MeterReadResult.objects.restrict(user, "view")
        .filter(run__created_at__gte=since)
        .annotate(day=TruncDate("run__created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", key)
        .annotate(scheduled=Count("pk"), ok=Count("pk", filter=Q(status=ResultStatus.OK)))
        .order_by("-day", key)
    )
    return [_with_rate(row, key) for row in rows]


def columns(group: str) -> list[tuple[str, str]]:
    """The CSV's columns: (row key, heading)."""
    return [("day", "day"), ("group", group), ("scheduled", "scheduled"), ("ok", "read"),
            ("missing", "missing"), ("rate", "success_percent")]  # fmt: skip


def csv_response(rows: list[dict], group: str, days: int):
    return csv_download(to_csv(columns(group), rows), f"collection-success-{group}-{days}d.csv")
