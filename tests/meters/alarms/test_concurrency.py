"""Concurrent evaluation on PostgreSQL never duplicates an alarm or double-counts an event."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from meters.alarms.engine import evaluate_events
from meters.alarms.models import Alarm, AlarmOccurrence, AlarmState
from tests.meters.alarms.helpers import POWER_DOWN, T0, events, make_rule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(*batches):
    barrier = threading.Barrier(len(batches))
    errors = []

    def work(batch):
        try:
            barrier.wait(5)
            evaluate_events(batch)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_two_threads_same_events_one_alarm(world):
    assert connection.vendor == "postgresql"
    make_rule(world.org_a)
    meters = world.grid_a.meters
    for round_ in range(5):
        start = T0 + timedelta(hours=round_)
        per_meter = {m.pk: events(m, POWER_DOWN, n=10, start=start) for m in meters}
        first = [e for evs in per_meter.values() for e in evs[:7]]
        second = [e for evs in per_meter.values() for e in evs[3:]]
        run_together(first, second)
        open_alarms = Alarm.objects.filter(state=AlarmState.RAISED)
        assert open_alarms.count() == len(meters)  # one per meter, never two
        assert sorted(open_alarms.values_list("count", flat=True)) == [10] * len(meters)
        # Close them so the next round races on creating the alarm again.
        open_alarms.update(state=AlarmState.CLEARED)
    assert AlarmOccurrence.objects.count() == 5 * 10 * len(meters)
    assert Alarm.objects.count() == 5 * len(meters)
