"""Celery tasks of alarms: thin wrappers around the engine and notifications.

(Stale connections are dropped around every task by amisite/celery.py's signal handlers.)

Beat entries (amisite/settings.py CELERY_BEAT_SCHEDULE):

    "meters-derive-alarm-events": {"task": "meters.derive_alarm_events", "schedule": 900.0}
"""

from __future__ import annotations

from celery import shared_task

from . import notifications


@shared_task(name="meters.evaluate_alarm_events", ignore_result=True)
def evaluate_alarm_events(keys: list[list]) -> int:
    """Evaluate stored events given as [meter_id, log, iso ts, code]; returns alarms changed."""
    from datetime import datetime

    from .alarm_engine import evaluate_events
    from .store import EventRecord

    events = [
        EventRecord(meter_id=m, log=log, ts=datetime.fromisoformat(ts), code=code)
        for m, log, ts, code in keys
    ]
    return len(evaluate_events(events))


@shared_task(name="meters.derive_alarm_events", ignore_result=True)
def derive_alarm_events() -> int:
    """The periodic derivations (unreachable, clock drift, zero use, ...); alarms changed."""
    from .alarm_engine import derive_events

    return len(derive_events())


@shared_task(name="meters.notify_alarms", ignore_result=True)
def notify_alarms(alarm_ids: list[int]) -> int:
    """Plan the messages about new alarms and start sending them; returns how many."""
    from .alarms import Alarm

    deliveries = []
    for alarm in Alarm.objects.filter(pk__in=alarm_ids).order_by("pk"):
        deliveries += notifications.plan_deliveries(alarm)
    notifications.queue_sends(deliveries)
    return len(deliveries)


@shared_task(bind=True, name="meters.send_notification", ignore_result=True, max_retries=None)
def send_notification(self, delivery_id: int) -> str:
    """Send one message; a gateway failure is retried with backoff, a sent one never again."""
    try:
        return notifications.send_delivery(delivery_id)
    except notifications.RetryLater as exc:
        raise self.retry(countdown=notifications.backoff_seconds(exc.attempts)) from None
