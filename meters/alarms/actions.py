"""Alarm verbs: raise (fold events into an alarm), acknowledge, clear. Atomic and audited.

Raising is the engine's (meters/alarms/engine.py) and is not audited per event: the alarm
and its occurrences are the record. Every acknowledgement and every clear, by a person or
by a restore event, writes one activity row. Browsers hear of each change through
`publish_alarm` after commit; notifications are queued after commit for new alarms only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit
from accounts.actions import OutOfScope

from .consumers import publish_alarm
from .events import label
from .models import OPEN_STATES, Alarm, AlarmOccurrence, AlarmRule, AlarmState
from .notifications import notify_alarms


class AlarmStateError(ValueError):
    """The alarm is not in a state that allows this (e.g. acknowledging a cleared alarm)."""


def _now(now: datetime | None) -> datetime:
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("naive datetime")
    return now


def _queue_notifications(alarms: Sequence[Alarm]) -> None:
    """One notification task for the new alarms of this transaction, after it commits."""
    ids = [a.pk for a in alarms]
    if ids:
        transaction.on_commit(lambda: notify_alarms.delay(ids))


def _locking():
    # Lock the alarm rows only (`of`): never the joined meter or organisation rows.
    return Alarm.objects.select_for_update(of=("self",))


def _locked_open(rule_id: int, meter_id: int, kind: str) -> Alarm | None:
    return (
        _locking()
        .select_related("organisation")
        .filter(rule_id=rule_id, meter_id=meter_id, kind=kind, state__in=OPEN_STATES)
        .first()
    )


def _counted(rule_id: int, meter_id: int, events: Sequence) -> set[tuple]:
    stamps = {e.ts for e in events}
    rows = AlarmOccurrence.objects.filter(rule_id=rule_id, meter_id=meter_id, ts__in=stamps)
    return set(rows.values_list("log", "ts", "code"))


def raise_alarm(rule: AlarmRule, meter, kind: str, events: Sequence) -> Alarm | None:
    """Fold `events` (EventRecords of one meter, one kind) into the rule's open alarm.

    Creates the alarm when none is open. Events already counted by this rule are skipped,
    so a repeat changes nothing and returns None. The open alarm is locked
    (`select_for_update`) and the partial unique constraint on open alarms makes a
    concurrent creator wait and then fold into the winner's alarm: never two open alarms.
    An acknowledged alarm whose new events come more than the rule's window after the last
    one is raised again (and notified again).
    """
    with transaction.atomic():
        alarm = _locked_open(rule.pk, meter.pk, kind)
        counted = _counted(rule.pk, meter.pk, events)
        new = [e for e in events if (e.log, e.ts, e.code) not in counted]
        if not new:
            return None
        first = min(e.ts for e in new)
        latest = max(new, key=lambda e: e.ts)
        created = False
        if alarm is None:
            try:
                with transaction.atomic():
                    alarm = Alarm.objects.create(
                        rule=rule,
                        meter=meter,
                        organisation=meter.organisation,
                        service_point_id=meter.service_point_id,
                        kind=kind,
                        severity=rule.severity,
                        count=len(new),
                        first_event_at=first,
                        last_event_at=latest.ts,
                        last_code=latest.code,
                    )
                    created = True
            except IntegrityError:
                # Another evaluation raised it first and has committed: fold into theirs.
                alarm = _locked_open(rule.pk, meter.pk, kind)
                counted = _counted(rule.pk, meter.pk, events)
                new = [e for e in events if (e.log, e.ts, e.code) not in counted]
                if alarm is None or not new:
                    return None
                first = min(e.ts for e in new)
                latest = max(new, key=lambda e: e.ts)
        AlarmOccurrence.objects.bulk_create(
            [
                AlarmOccurrence(
                    rule=rule, alarm=alarm, meter_id=meter.pk, log=e.log, ts=e.ts, code=e.code
                )
                for e in new
            ]
        )
        reraised = False
        if not created:
            reraised = (
                alarm.state == AlarmState.ACKNOWLEDGED
                and (first - alarm.last_event_at).total_seconds() > rule.dedup_window_s
            )
            alarm.count += len(new)
            alarm.first_event_at = min(alarm.first_event_at, first)
            if latest.ts >= alarm.last_event_at:
                alarm.last_event_at, alarm.last_code = latest.ts, latest.code
            if reraised:
                alarm.state = AlarmState.RAISED
            alarm.save()
        alarm.meter = meter
        publish_alarm(alarm)
        if created or reraised:
            _queue_notifications([alarm])
        return alarm


def raise_alarms(groups: Sequence[tuple]) -> list[Alarm]:
    """`raise_alarm` for many (rule, meter, kind, events) groups at once, in a few queries.

    The same rules: events counted once per rule, one open alarm per (rule, meter, kind).
    New alarms go in one INSERT (in a fixed key order, so two evaluators never wait on each
    other crosswise); if another evaluation created one of them first, the unique
    constraint refuses the INSERT and the groups fall back to `raise_alarm` one by one.
    """
    groups = [g for g in groups if g[3]]
    if not groups:
        return []
    with transaction.atomic():
        meter_ids = {m.pk for _, m, _, _ in groups}
        rule_ids = {r.pk for r, _, _, _ in groups}
        open_alarms = {
            (a.rule_id, a.meter_id, a.kind): a
            for a in _locking()
            .filter(meter_id__in=meter_ids, rule_id__in=rule_ids, state__in=OPEN_STATES)
            .order_by("pk")
        }
        stamps = {e.ts for *_, evs in groups for e in evs}
        counted = set(
            AlarmOccurrence.objects.filter(
                meter_id__in=meter_ids, rule_id__in=rule_ids, ts__in=stamps
            ).values_list("rule_id", "meter_id", "log", "ts", "code")
        )
        to_create, folds = [], []
        for rule, meter, kind, evs in groups:
            new = [e for e in evs if (rule.pk, meter.pk, e.log, e.ts, e.code) not in counted]
            if not new:
                continue
            if (rule.pk, meter.pk, kind) in open_alarms:
                folds.append((rule, meter, kind, new))
            else:
                to_create.append((rule, meter, kind, new))
        changed = []
        for rule, meter, kind, new in folds:  # already open: fold (rare in a batch)
            alarm = raise_alarm(rule, meter, kind, new)
            if alarm is not None:
                changed.append(alarm)
        if not to_create:
            return changed
        to_create.sort(key=lambda g: (g[1].pk, g[0].pk, g[2]))
        rows = []
        for rule, meter, kind, new in to_create:
            latest = max(new, key=lambda e: e.ts)
            rows.append(
                Alarm(
                    rule=rule,
                    meter=meter,
                    organisation=meter.organisation,
                    service_point_id=meter.service_point_id,
                    kind=kind,
                    severity=rule.severity,
                    count=len(new),
                    first_event_at=min(e.ts for e in new),
                    last_event_at=latest.ts,
                    last_code=latest.code,
                )
            )
        try:
            with transaction.atomic():
                created = Alarm.objects.bulk_create(rows)
        except IntegrityError:
            for rule, meter, kind, new in to_create:
                alarm = raise_alarm(rule, meter, kind, new)
                if alarm is not None:
                    changed.append(alarm)
            return changed
        AlarmOccurrence.objects.bulk_create(
            [
                AlarmOccurrence(
                    rule=rule, alarm=alarm, meter_id=meter.pk, log=e.log, ts=e.ts, code=e.code
                )
                for alarm, (rule, meter, _, new) in zip(created, to_create, strict=True)
                for e in new
            ]
        )
        for alarm in created:
            publish_alarm(alarm)
        _queue_notifications(created)
        return changed + created


def clear_by_event(meter, kinds: Sequence[str], *, event_kind: str, at: datetime) -> list[Alarm]:
    """A restore event at `at` clears the meter's open alarms of `kinds` raised before it."""
    return clear_by_system(
        Alarm.objects.filter(
            meter_id=meter.pk, kind__in=kinds, state__in=OPEN_STATES, last_event_at__lte=at
        ),
        at=at,
        comment=f"{label(event_kind)} at {at.isoformat()}",
        by_event=event_kind,
    )


def clear_by_system(alarms, *, at: datetime, comment: str, by_event: str) -> list[Alarm]:
    """Clear these open alarms because their condition ended (no person): locked, audited
    as the system's, pushed to browsers."""
    cleared = []
    with transaction.atomic():
        locked = (
            _locking()
            .select_related("organisation", "meter", "line")
            .filter(pk__in=alarms.values("pk"), state__in=OPEN_STATES)
            .order_by("pk")
        )
        for alarm in locked:
            before = alarm.state
            alarm.state = AlarmState.CLEARED
            alarm.cleared_at = at
            alarm.clear_comment = comment
            alarm.save(update_fields=["state", "cleared_at", "clear_comment", "updated_at"])
            audit.record(
                "alarm_clear",
                obj=alarm,
                username="system",
                changes={"state": [before, AlarmState.CLEARED], "by_event": by_event},
            )
            publish_alarm(alarm)
            cleared.append(alarm)
    return cleared


def _lock_in_scope(alarm: Alarm, acting_user) -> Alarm:
    locked = (
        Alarm.objects.restrict(acting_user, "change")
        .select_for_update(of=("self",))
        .filter(pk=alarm.pk)
        .first()
    )
    if locked is None:
        raise OutOfScope("this alarm is outside what you may change")
    return Alarm.objects.select_related("organisation", "meter").get(pk=locked.pk)


def acknowledge_alarm(alarm: Alarm, *, acting_user, comment: str = "", now=None) -> Alarm:
    """Someone has seen it and is on it. Only a raised alarm can be acknowledged."""
    now = _now(now)
    with transaction.atomic():
        alarm = _lock_in_scope(alarm, acting_user)
        if alarm.state != AlarmState.RAISED:
            raise AlarmStateError(
                f"a {alarm.get_state_display().lower()} alarm cannot be acknowledged"
            )
        alarm.state = AlarmState.ACKNOWLEDGED
        alarm.acknowledged_at = now
        alarm.acknowledged_by = acting_user
        alarm.ack_comment = comment
        alarm.save()
        audit.record(
            "alarm_acknowledge",
            user=acting_user,
            obj=alarm,
            changes={"state": [AlarmState.RAISED, AlarmState.ACKNOWLEDGED], "comment": comment},
        )
        publish_alarm(alarm)
    return alarm


def clear_alarm(alarm: Alarm, *, acting_user, comment: str = "", now=None) -> Alarm:
    """Cleared by hand: the condition is over (or was never real)."""
    now = _now(now)
    with transaction.atomic():
        alarm = _lock_in_scope(alarm, acting_user)
        if alarm.state == AlarmState.CLEARED:
            raise AlarmStateError("the alarm is already cleared")
        before = alarm.state
        alarm.state = AlarmState.CLEARED
        alarm.cleared_at = now
        alarm.cleared_by = acting_user
        alarm.clear_comment = comment
        alarm.save()
        audit.record(
            "alarm_clear",
            user=acting_user,
            obj=alarm,
            changes={"state": [before, AlarmState.CLEARED], "comment": comment},
        )
        publish_alarm(alarm)
    return alarm
