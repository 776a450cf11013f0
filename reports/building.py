"""Writing a queued export's file: the work `tasks.build_export_task` does.

Apart from `actions` (which queues the task) so that actions -> tasks -> building runs one way.
"""

from __future__ import annotations

import logging
import os
import secrets

from django.conf import settings
from django.http import QueryDict
from django.utils import timezone

from . import exporters
from .forms import DataQueryForm
from .models import ExportJob, ExportStatus

log = logging.getLogger(__name__)
EXPORT_DIR = "exports"


def build_export(job_id: int) -> None:
    """Write the export file (idempotent: a finished job is left alone)."""
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    if job.status == ExportStatus.DONE or job.requested_by is None:
        return
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING, rows_done=0)
    params = QueryDict(mutable=True)
    for key, values in job.params.items():
        params.setlist(key, values)
    # The requester's scope as it is now: the task restricts again, never trusts the row.
    form = DataQueryForm(params, user=job.requested_by)
    folder = os.path.join(settings.MEDIA_ROOT, EXPORT_DIR)
    os.makedirs(folder, exist_ok=True)
    name = f"{EXPORT_DIR}/{job.pk}-{secrets.token_hex(8)}.{job.fmt}"
    try:
        if not form.is_valid():
            raise ValueError(f"the query is no longer valid: {form.errors.as_text()}")

        def progress(rows: int) -> None:
            ExportJob.objects.filter(pk=job.pk).update(rows_done=rows)

        partial = os.path.join(settings.MEDIA_ROOT, name + ".part")
        exporters.write(job.fmt, form.build(), partial, export_title(form), progress)
        os.replace(partial, os.path.join(settings.MEDIA_ROOT, name))
    except Exception as exc:  # the job row must say what went wrong
        log.exception("export %s failed", job.pk)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        return
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.DONE, file=name, finished_at=timezone.now()
    )


def export_title(form) -> str:
    data = form.cleaned_data
    return f"Meter data {data['start']} to {data['end']}"
