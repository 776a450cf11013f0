"""Celery tasks of the alarm engine: thin wrappers around `engine`.

The notification tasks (`meters.notify_alarms`, `meters.send_notification`) live in
`notifications.py`, beside what they run: `actions` queues them when an alarm is raised, and
`actions` is below the engine, which this module imports. Importing them here registers them
with every process that autodiscovers `meters.tasks`.

(Stale connections are dropped around every task by amisite/celery.py's signal handlers.)

Beat entries (amisite/settings.py CELERY_BEAT_SCHEDULE):

    "meters-derive-alarm-events": {"task": "meters.derive_alarm_events", "schedule": 900.0}
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from ..store import EventRecord
from .engine import derive_events, evaluate_events
from .notifications import notify_alarms, send_notification

__all__ = ["derive_alarm_events", "evaluate_alarm_events", "notify_alarms", "send_notification"]


@shared_task(name="meters.evaluate_alarm_events", ignore_result=True)
def evaluate_alarm_events(keys: list[list]) -> int:
    """Evaluate stored events given as [meter_id, log, iso ts, code]; returns alarms changed."""
    events = [
        EventRecord(meter_id=m, log=log, ts=datetime.fromisoformat(ts), code=code)
        for m, log, ts, code in keys
    ]
    return len(evaluate_events(events))


@shared_task(name="meters.derive_alarm_events", ignore_result=True)
def derive_alarm_events() -> int:
    """The periodic derivations (unreachable, clock drift, zero use, ...); alarms changed."""
    return len(derive_events())
