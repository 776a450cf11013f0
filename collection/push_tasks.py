"""Celery side of the push listener: store what a meter pushed, then evaluate alarms.

The listener (collection/push/, ``manage.py listen_push``) only parses and authenticates;
this task does the writing. Imported by collection/tasks.py so the worker registers it.
"""

from __future__ import annotations

import logging
from datetime import UTC

from celery import shared_task
from django.db import transaction
from django.db.models import Q

from amisite.observability import observe_push_stored
from meters.alarms.engine import evaluate_events
from meters.models import Meter
from meters.obis import normalise as normalise_obis
from meters.store import EventRecord

from .ingest import IngestResult, ingest_events
from .protocols.push import event_from_json
from .push.models import PushCounter
from .relay import record_relay_states, relay_events

log = logging.getLogger("collection.push")


def _advance_counter(meter_id: int, counter: dict | None) -> None:
    """Raise the durable replay floor to this push's counter (never lower it).

    Tasks may run out of order (several workers), so this is a maximum, not a check: the
    listener rejects replays; the floor only survives its restarts.
    """
    if not counter or counter.get("ic") is None:
        return
    ic, key_id = int(counter["ic"]), str(counter.get("key_id") or "")
    row, created = PushCounter.objects.select_for_update().get_or_create(
        meter_id=meter_id, defaults={"key_id": key_id, "last_ic": ic}
    )
    if created:
        return
    if row.key_id != key_id:  # new keys: a new nonce space, the counter starts again
        row.key_id, row.last_ic = key_id, ic
        row.save(update_fields=["key_id", "last_ic", "updated_at"])
    elif row.last_ic < ic:
        row.last_ic = ic
        row.save(update_fields=["last_ic", "updated_at"])


def _evaluate_alarms(records: list[EventRecord]) -> None:
    evaluate_events(records)


@shared_task(name="collection.handle_push", acks_late=True, reject_on_worker_lost=True)
def handle_push(
    meter_id: int, events: list[dict], counter: dict | None = None, received: float | None = None
) -> dict:
    """Store one push's events (idempotent), then evaluate alarms on the ones new to the store.

    ``events``: ``[{"ts": ISO-8601 aware, "code": int, "log": OBIS, "data": [...]}, ...]``
    (collection.protocols.push.event_to_json); ``counter``: ``{"ic": int, "key_id": str}`` for
    ciphered pushes. Everything happens in one transaction, so a redelivered task either
    finds nothing done (and does it all) or everything done (and evaluates nothing).
    Returns the ingest counts plus ``"new"`` (events passed to the alarm engine).
    ``received``: the listener's wall clock at arrival; arrival-to-stored time is observed.
    """
    meter = Meter.objects.filter(pk=meter_id).only("id").first()
    if meter is None:  # deleted since the push arrived
        log.warning("push for meter %s dropped: the meter no longer exists", meter_id)
        return IngestResult().as_dict() | {"new": 0}
    parsed = [event_from_json(e) for e in events]
    keys = {(normalise_obis(e.log), e.timestamp.astimezone(UTC), e.code) for e in parsed}
    match = Q()
    for log_obis, ts, code in keys:
        match |= Q(log=log_obis, ts=ts, code=code)
    with transaction.atomic():
        _advance_counter(meter_id, counter)
        stored = EventRecord.objects.filter(meter_id=meter_id)
        before = set(stored.filter(match).values_list("log", "ts", "code")) if keys else set()
        result = ingest_events([(meter_id, parsed)])
        record_relay_states(relay_events([(meter_id, parsed)]))  # newer wins: idempotent
        new = [k for k in keys if k not in before]
        records = []
        if new:
            fresh = Q()
            for log_obis, ts, code in new:
                fresh |= Q(log=log_obis, ts=ts, code=code)
            records = list(stored.filter(fresh).order_by("ts", "log", "code"))
            _evaluate_alarms(records)
    if received is not None:
        observe_push_stored(received)
    out = result.as_dict()
    out["new"] = len(records)
    return out
