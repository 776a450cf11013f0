"""Builders for alarm tests: rules, stored events, alarms raised through the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meters.alarms.engine import evaluate_events
from meters.alarms.events import EventKind
from meters.alarms.models import AlarmRule, AlarmSubscription, Severity
from meters.store import EventRecord

T0 = datetime(2026, 6, 1, 10, 42, tzinfo=UTC)
STANDARD_LOG = "0-0:99.98.0*255"
POWER_DOWN, POWER_UP, COVER, MAGNET = 1, 2, 40, 42


def make_rule(organisation, kinds=(EventKind.POWER_FAILURE,), **extra) -> AlarmRule:
    extra.setdefault("severity", Severity.MAJOR)
    return AlarmRule.objects.create(
        name=f"{organisation.code} {'/'.join(kinds)}",
        organisation=organisation,
        kinds=list(kinds),
        **extra,
    )


def events(meter, code: int, n: int = 1, start=T0, step=timedelta(seconds=1), log=STANDARD_LOG):
    """`n` stored events of one code, `step` apart (stored like ingest stores them)."""
    rows = [
        EventRecord(meter_id=meter.pk, log=log, ts=start + i * step, code=code) for i in range(n)
    ]
    EventRecord.objects.bulk_create(rows, ignore_conflicts=True)
    return rows


def raise_alarm(meter, code: int = POWER_DOWN, at=T0):
    """One alarm raised through the engine from one stored event (a rule must match)."""
    (alarm,) = evaluate_events(events(meter, code, start=at))
    return alarm


def make_subscription(user, organisation=None, **extra) -> AlarmSubscription:
    return AlarmSubscription.objects.create(
        user=user, organisation=organisation or user.organisation, **extra
    )


def alarm_rows(w) -> dict:
    """Per alarm model, (a row of organisation A, a row of organisation B) for meta-tests."""
    from meters.alarms.models import Alarm, DeliveryChannel, NotificationDelivery

    rules = (make_rule(w.org_a), make_rule(w.org_b))
    alarms = tuple(raise_alarm(g.meters[0]) for g in (w.grid_a, w.grid_b))
    subs = (make_subscription(w.admin_a), make_subscription(w.admin_b))
    deliveries = tuple(
        NotificationDelivery.objects.create(
            alarm=alarm,
            subscription=sub,
            user=sub.user,
            organisation=alarm.organisation,
            channel=DeliveryChannel.EMAIL,
            recipient="ops@example.invalid",
            body="x",
            created_at=T0,
        )
        for alarm, sub in zip(alarms, subs, strict=True)
    )
    return {
        AlarmRule: rules,
        Alarm: tuple(Alarm.objects.get(pk=a.pk) for a in alarms),
        AlarmSubscription: subs,
        NotificationDelivery: deliveries,
    }
