"""Report operations: queue a long export (`building.build_export` writes it, in the task)."""

from __future__ import annotations

from django.db import transaction
from django.http import QueryDict

from .models import ExportJob
from .tasks import build_export_task


def queue_export(user, fmt: str, params: QueryDict, rows_estimated: int) -> ExportJob:
    """A queued export of the query in `params`; the task starts after commit."""
    with transaction.atomic():
        job = ExportJob.objects.create(
            organisation=user.organisation,
            requested_by=user,
            fmt=fmt,
            params={k: v for k, v in params.lists()},
            rows_estimated=rows_estimated,
        )
        transaction.on_commit(lambda: build_export_task.delay(job.pk))
    return job
