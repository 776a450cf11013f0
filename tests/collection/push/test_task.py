"""`collection.handle_push`: idempotent storage, durable counter floor, alarm engine hand-off."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collection import push_tasks
from collection.push.models import PushCounter
from collection.push_tasks import handle_push
from meters.store import EventRecord

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
EVENTS = [
    {"ts": NOW.isoformat(), "code": 0, "log": "0-0:97.98.0*255", "data": [5]},
    {"ts": NOW.isoformat(), "code": 2, "log": "0-0:97.98.0*255", "data": [5]},
]


@pytest.fixture
def engine(monkeypatch):
    seen = []
    monkeypatch.setattr(push_tasks, "evaluate_events", lambda records: seen.append(list(records)))
    return seen


def test_handle_push_is_idempotent_and_evaluates_new_events_once(world, engine):
    meter = world.grid_a.meters[0]
    first = handle_push.run(meter.pk, EVENTS, counter={"ic": 7, "key_id": "k1"})
    again = handle_push.run(meter.pk, EVENTS, counter={"ic": 7, "key_id": "k1"})
    assert (first["inserted"], first["new"]) == (2, 2)
    assert (again["inserted"], again["new"]) == (0, 0)
    assert EventRecord.objects.filter(meter=meter).count() == 2
    assert [[(r.code, r.data) for r in batch] for batch in engine] == [[(0, [5]), (2, [5])]]


def test_counter_floor_only_rises_and_restarts_with_new_keys(world):
    meter = world.grid_a.meters[0]
    handle_push.run(meter.pk, EVENTS, counter={"ic": 9, "key_id": "k1"})
    handle_push.run(meter.pk, EVENTS, counter={"ic": 8, "key_id": "k1"})  # out of order
    assert PushCounter.objects.get(meter=meter).last_ic == 9
    handle_push.run(meter.pk, EVENTS, counter={"ic": 1, "key_id": "k2"})  # keys changed
    row = PushCounter.objects.get(meter=meter)
    assert (row.key_id, row.last_ic) == ("k2", 1)


def test_deleted_meter_is_a_no_op(db):
    assert handle_push.run(999_999, EVENTS)["inserted"] == 0
