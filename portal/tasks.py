"""The portal's periodic work (beat entries in amisite/settings.py CELERY_BEAT_SCHEDULE)."""

from celery import shared_task
from django.utils import timezone

from . import bills, outages, similar
from .customers import month_start


@shared_task(name="portal.notify_planned_work", ignore_result=True)
def notify_planned_work() -> int:
    """Tell customers of planned outages ahead, by their preferences (portal.outages)."""
    return outages.notify_planned()


@shared_task(name="portal.issue_bills", ignore_result=True)
def issue_bills() -> int:
    """Issue last month's bills from its issue day (those not issued yet; portal.bills)."""
    month = f"{month_start(timezone.localdate(), 1):%Y-%m}"
    if timezone.localdate() < bills.issues_on(month):
        return 0
    return bills.issue_month(month)


@shared_task(name="portal.compute_similar_homes", ignore_result=True)
def compute_similar_homes() -> int:
    """Precompute the similar homes' averages the usage views read (portal.similar)."""
    return similar.compute()
