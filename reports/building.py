"""Writing files in tasks: a queued data-query export (`tasks.build_export_task`) and a run
of a report definition (`tasks.build_run_task`, `tasks.run_schedule`).

Apart from `actions` (which queues the tasks) so that actions -> tasks -> building runs one way.
"""

from __future__ import annotations

import logging
import os
import secrets

from django.conf import settings
from django.http import QueryDict
from django.utils import timezone

from . import engine, exporters
from .exporters import table, table_pdf, table_xml
from .exporters.rows import counted
from .forms import DataQueryForm
from .models import ExportJob, ExportStatus, ReportDefinition, ReportRun

log = logging.getLogger(__name__)
EXPORT_DIR = "exports"
RUN_DIR = "report-runs"


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


def write_table(fmt: str, result: engine.Table, path: str, attrs: dict | None = None) -> None:
    """Write a run's table in `fmt` (csv, xlsx, pdf with the graph, xml) to `path`."""
    cell = table.report_cell
    if fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as out:
            for line in table.csv_lines(result.columns, result.rows, cell):
                out.write(line)
    elif fmt == "xlsx":
        table.write_xlsx(path, [(result.title, result.columns, result.rows)], cell)
    elif fmt == "pdf":
        table_pdf.write_pdf(
            path, result.title, result.note, result.columns, result.rows, cell, result.chart
        )
    elif fmt == "xml":
        with open(path, "wb") as out:
            for chunk in table_xml.stream(
                result.title, result.note, result.columns, result.rows, cell, attrs
            ):
                out.write(chunk)
    else:
        raise ValueError(f"unknown report format {fmt!r}")


def run_title(run: ReportRun) -> str:
    return f"{run.version.snapshot['name']} (v{run.version.number})"


def build_run(run_id: int) -> str:
    """Write a run's file (idempotent: a finished run is left alone); returns its status.

    Built as its requester sees the definition's organisation now (`engine.within`): a
    requester who lost the definition, or a filter's node, fails the run with the reason.
    """
    run = ReportRun.objects.select_related(
        "requested_by", "organisation", "version", "definition"
    ).get(pk=run_id)
    if run.status == ExportStatus.DONE:
        return run.status
    ReportRun.objects.filter(pk=run.pk).update(status=ExportStatus.RUNNING, rows_done=0)
    folder = os.path.join(settings.MEDIA_ROOT, RUN_DIR)
    os.makedirs(folder, exist_ok=True)
    name = f"{RUN_DIR}/{run.pk}-{secrets.token_hex(8)}.{run.fmt}"
    partial = os.path.join(settings.MEDIA_ROOT, name + ".part")
    try:
        user = run.requested_by
        if user is None or not user.is_active:
            raise ValueError("the user who asked for this run is gone or inactive")
        if (
            not ReportDefinition.objects.restrict(user, "view")
            .filter(pk=run.definition_id)
            .exists()
        ):
            raise ValueError(f"{user} may no longer see this report")
        principal = engine.within(user, run.organisation)
        spec = engine.spec_of(principal, run.version.snapshot)
        ReportRun.objects.filter(pk=run.pk).update(
            first_day=spec.period.first, last_day=spec.period.last
        )
        result = engine.table(principal, spec, run_title(run))

        def progress(rows: int) -> None:
            ReportRun.objects.filter(pk=run.pk).update(rows_done=rows)

        result.rows = counted(result.rows, progress)
        attrs = {"source": spec.source.key, "version": run.version.number,
                 "first_day": spec.period.first, "last_day": spec.period.last}  # fmt: skip
        write_table(run.fmt, result, partial, attrs)
        os.replace(partial, os.path.join(settings.MEDIA_ROOT, name))
    except Exception as exc:  # the run row must say what went wrong
        log.exception("report run %s failed", run.pk)
        if os.path.exists(partial):
            os.unlink(partial)
        ReportRun.objects.filter(pk=run.pk).update(
            status=ExportStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        return ExportStatus.FAILED
    size = os.path.getsize(os.path.join(settings.MEDIA_ROOT, name))
    ReportRun.objects.filter(pk=run.pk).update(
        status=ExportStatus.DONE, file=name, size=size, finished_at=timezone.now()
    )
    return ExportStatus.DONE


def run_path(run: ReportRun) -> str | None:
    """The run's file on disk, or None when it is not ready or gone."""
    if run.status != ExportStatus.DONE or not run.file:
        return None
    path = os.path.join(settings.MEDIA_ROOT, run.file)
    return path if os.path.exists(path) else None
