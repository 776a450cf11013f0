"""Tasks of the reports app (thin: the work is in actions)."""

from celery import shared_task


@shared_task(name="reports.build_export")
def build_export_task(job_id: int) -> None:
    from .actions import build_export

    build_export(job_id)
