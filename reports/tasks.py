"""Tasks of the reports app (thin: the work is in building)."""

from celery import shared_task

from .building import build_export


@shared_task(name="reports.build_export")
def build_export_task(job_id: int) -> None:
    build_export(job_id)
