"""Rules -> alarms: matching, storms, restores, idempotency, derived events."""

from datetime import UTC, date, datetime, timedelta

import pytest

from accounts.models import ActivityLog
from collection.validation import Finding
from meters.alarms import engine as alarm_engine
from meters.alarms.engine import evaluate_events
from meters.alarms.events import EventKind
from meters.alarms.models import Alarm, AlarmOccurrence, AlarmState
from meters.models import CommStatus, GridNode, Meter, MeterModel
from meters.store import DailyEnergy, EventRecord
from tests.meters.alarms.helpers import (
    COVER,
    MAGNET,
    POWER_DOWN,
    POWER_UP,
    T0,
    events,
    make_rule,
)

pytestmark = pytest.mark.django_db


def test_rule_matches_by_organisation_subtree(world):
    make_rule(world.org_a)
    a, b = world.grid_a.meters[0], world.grid_b.meters[0]
    changed = evaluate_events(events(a, POWER_DOWN) + events(b, POWER_DOWN))
    assert [x.meter_id for x in changed] == [a.pk]
    assert Alarm.objects.get().organisation == world.org_a


def test_utility_rule_covers_every_region(world):
    make_rule(world.utility)
    changed = evaluate_events(
        events(world.grid_a.meters[0], POWER_DOWN) + events(world.grid_b.meters[0], POWER_DOWN)
    )
    assert {a.organisation_id for a in changed} == {world.org_a.pk, world.org_b.pk}


def test_rule_matches_by_grid_node_model_and_kind(world):
    grid = world.grid_a
    other_tx = GridNode.objects.create(
        kind="transformer", code="NA-T2", name="T2", parent=grid.feeder, organisation=world.org_a
    )
    point = GridNode.objects.create(
        kind="service_point", code="NA-SP7", name="SP7", parent=other_tx, organisation=world.org_a
    )
    own_model = MeterModel.objects.create(manufacturer="N", name="X", organisation=world.org_a)
    elsewhere = Meter.objects.create(
        serial="NA-ELSE", meter_model=own_model, service_point=point, organisation=world.org_a
    )
    make_rule(world.org_a, kinds=[EventKind.MAGNETIC_TAMPER], grid_node=grid.transformer)
    make_rule(world.org_a, kinds=[EventKind.TERMINAL_COVER_OPEN], meter_model=own_model)
    evs = []
    for meter in (grid.meters[0], elsewhere):
        evs += events(meter, MAGNET) + events(meter, COVER) + events(meter, POWER_DOWN)
    changed = evaluate_events(evs)
    got = {(a.meter.serial, a.kind) for a in changed}
    assert got == {
        (grid.meters[0].serial, EventKind.MAGNETIC_TAMPER),  # below the rule's transformer
        ("NA-ELSE", EventKind.TERMINAL_COVER_OPEN),  # of the rule's model
    }  # and no power-failure alarm: no rule asks for it


def test_inactive_rule_raises_nothing(world):
    make_rule(world.org_a, active=False)
    assert evaluate_events(events(world.grid_a.meters[0], POWER_DOWN)) == []


def test_storm_of_one_event_is_one_alarm_with_a_count(world):
    make_rule(world.org_a, kinds=[EventKind.MAGNETIC_TAMPER])
    meter = world.grid_a.meters[0]
    storm = events(meter, MAGNET, n=1000)
    changed = evaluate_events(storm)
    assert len(changed) == 1
    alarm = Alarm.objects.get()
    assert alarm.count == 1000
    assert alarm.first_event_at == T0 and alarm.last_event_at == T0 + timedelta(seconds=999)
    # The same storm again (a repeated read, a redelivered task): nothing changes.
    assert evaluate_events(storm) == []
    alarm.refresh_from_db()
    assert alarm.count == 1000 and Alarm.objects.count() == 1
    # The storm goes on in the next read: the same alarm counts on.
    evaluate_events(events(meter, MAGNET, n=10, start=T0 + timedelta(hours=1)))
    alarm.refresh_from_db()
    assert alarm.count == 1010 and Alarm.objects.count() == 1


def test_restore_event_clears_and_is_audited(world):
    make_rule(world.org_a)
    meter = world.grid_a.meters[0]
    batch = events(meter, POWER_DOWN) + events(meter, POWER_UP, start=T0 + timedelta(minutes=5))
    changed = evaluate_events(batch)
    (alarm,) = changed
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.CLEARED
    assert alarm.cleared_at == T0 + timedelta(minutes=5) and alarm.cleared_by is None
    log = ActivityLog.objects.get(action="alarm_clear", object_id=str(alarm.pk))
    assert log.username == "system" and log.changes["by_event"] == EventKind.POWER_RESTORED
    # Again: no new alarm, no second clear.
    assert evaluate_events(batch) == []
    assert ActivityLog.objects.filter(action="alarm_clear").count() == 1
    # A new failure later is a new alarm.
    evaluate_events(events(meter, POWER_DOWN, start=T0 + timedelta(hours=2)))
    assert Alarm.objects.filter(state=AlarmState.RAISED).count() == 1


def test_restore_before_the_failure_does_not_clear_it(world):
    make_rule(world.org_a)
    meter = world.grid_a.meters[0]
    evaluate_events(events(meter, POWER_UP, start=T0 - timedelta(minutes=1)))
    evaluate_events(events(meter, POWER_DOWN))
    assert Alarm.objects.get().state == AlarmState.RAISED


def test_acknowledged_alarm_raised_again_after_the_window(world):
    from meters.alarms.actions import acknowledge_alarm

    make_rule(world.org_a, kinds=[EventKind.MAGNETIC_TAMPER], dedup_window_s=600)
    meter = world.grid_a.meters[0]
    evaluate_events(events(meter, MAGNET))
    alarm = acknowledge_alarm(Alarm.objects.get(), acting_user=world.engineer_a)
    evaluate_events(events(meter, MAGNET, start=T0 + timedelta(minutes=5)))  # within window
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.ACKNOWLEDGED and alarm.count == 2
    evaluate_events(events(meter, MAGNET, start=T0 + timedelta(minutes=30)))  # after it
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.RAISED and alarm.count == 3
    assert Alarm.objects.count() == 1


def test_two_rules_two_alarms_each_counted_once(world):
    make_rule(world.org_a)
    make_rule(world.utility)
    evaluate_events(events(world.grid_a.meters[0], POWER_DOWN, n=3))
    assert sorted(Alarm.objects.values_list("count", flat=True)) == [3, 3]
    assert AlarmOccurrence.objects.count() == 6


# ------------------------------------------------------------------ derived events


def test_unreachable_and_back(world):
    make_rule(world.org_a, kinds=[EventKind.METER_UNREACHABLE])
    meter = world.grid_a.meters[0]
    last_ok = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    CommStatus.objects.create(meter=meter, consecutive_failures=3, last_success=last_ok)
    CommStatus.objects.create(meter=world.grid_a.meters[1], consecutive_failures=2)
    (alarm,) = evaluate_events(alarm_engine.derive_unreachable())
    assert alarm.meter == meter and alarm.first_event_at == last_ok
    assert evaluate_events(alarm_engine.derive_unreachable()) == []  # still down: no change
    CommStatus.objects.filter(meter=meter).update(
        consecutive_failures=0, last_success=last_ok + timedelta(hours=3)
    )
    evaluate_events(alarm_engine.derive_unreachable())
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.CLEARED


def test_clock_drift(world):
    make_rule(world.org_a, kinds=[EventKind.CLOCK_DRIFT])
    meter = world.grid_a.meters[0]
    CommStatus.objects.create(meter=meter, clock_drift_s=-95.0, last_success=T0)
    CommStatus.objects.create(meter=world.grid_a.meters[1], clock_drift_s=12.0, last_success=T0)
    (alarm,) = evaluate_events(alarm_engine.derive_clock_drift(limit_s=60))
    assert alarm.meter == meter
    CommStatus.objects.filter(meter=meter).update(
        clock_drift_s=1.0, last_success=T0 + timedelta(hours=1)
    )
    evaluate_events(alarm_engine.derive_clock_drift(limit_s=60))
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.CLEARED


def _daily(meter, days, value):
    channel = meter.meter_model.channels.get(obis="1-0:1.29.0*255")
    DailyEnergy.objects.bulk_create(
        [DailyEnergy(meter=meter, channel=channel, day=d, value=value, intervals=96) for d in days]
    )


def test_zero_consumption_for_n_days(world, settings):
    settings.TIME_ZONE = "UTC"
    make_rule(world.org_a, kinds=[EventKind.ZERO_CONSUMPTION])
    idle, busy = world.grid_a.meters
    now = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)
    days = [date(2026, 6, d) for d in (7, 8, 9)]
    _daily(idle, days, 0)
    _daily(busy, days, 5400)
    (alarm,) = evaluate_events(alarm_engine.derive_zero_consumption(days=3, now=now))
    assert alarm.meter == idle
    assert alarm.first_event_at == datetime(2026, 6, 7, tzinfo=UTC)
    assert evaluate_events(alarm_engine.derive_zero_consumption(days=3, now=now)) == []


def test_consumption_while_disconnected(world, settings):
    settings.TIME_ZONE = "UTC"
    make_rule(world.org_a, kinds=[EventKind.CONSUMPTION_WHILE_DISCONNECTED])
    meter, other = world.grid_a.meters
    events(meter, 61, start=datetime(2026, 6, 5, 9, 0, tzinfo=UTC))  # remote disconnection
    events(other, 61, start=datetime(2026, 6, 5, 9, 0, tzinfo=UTC))
    events(other, 62, start=datetime(2026, 6, 6, 9, 0, tzinfo=UTC))  # and reconnected
    _daily(meter, [date(2026, 6, 6), date(2026, 6, 7)], 1200)
    _daily(other, [date(2026, 6, 7)], 1200)
    now = datetime(2026, 6, 8, tzinfo=UTC)
    (alarm,) = evaluate_events(alarm_engine.derive_consumption_while_disconnected(now=now))
    assert alarm.meter == meter
    assert alarm.first_event_at == datetime(2026, 6, 6, tzinfo=UTC)


def test_register_backwards_from_ingest_findings(world):
    make_rule(world.org_a, kinds=[EventKind.REGISTER_BACKWARDS])
    meter = world.grid_a.meters[0]
    findings = [
        Finding("register_backwards", meter.pk, "1-0:1.8.0*255", T0, detail="-12 Wh"),
        Finding("gap", meter.pk, "1-0:1.29.0*255", T0),
    ]
    (alarm,) = evaluate_events(alarm_engine.derive_from_findings(findings))
    assert alarm.kind == EventKind.REGISTER_BACKWARDS
    stored = EventRecord.objects.get(meter_id=meter.pk, log="derived")
    assert stored.data["detail"] == "-12 Wh"


def test_voltage_out_of_band_and_back(world):
    from meters.models import Channel
    from meters.store import RegisterRead

    make_rule(world.org_a, kinds=[EventKind.VOLTAGE_OUT_OF_BAND])
    meter = world.grid_a.meters[0]
    volts = Channel.objects.create(
        meter_model=world.meter_model,
        obis="1-0:32.7.0*255",
        name="U L1",
        unit="V",
        scaler=-1,
        kind="instantaneous",
    )
    for minutes, value in ((0, 2301), (15, 1950), (30, 2290)):
        RegisterRead.objects.create(
            meter=meter, channel=volts, read_at=T0 + timedelta(minutes=minutes), value=value
        )
    changed = evaluate_events(alarm_engine.derive_voltage_band(since=T0 - timedelta(hours=1)))
    (alarm,) = changed
    alarm.refresh_from_db()
    assert alarm.first_event_at == T0 + timedelta(minutes=15)
    assert alarm.state == AlarmState.CLEARED  # back in band at +30 min


def test_evaluate_after_ingest_with_the_same_batch(world):
    from collection.ingest import ingest_events
    from collection.protocols.base import MeterEvent

    make_rule(world.org_a, kinds=[EventKind.POWER_FAILURE, EventKind.TERMINAL_COVER_OPEN])
    meter = world.grid_a.meters[0]
    batch = [
        (
            meter,
            [
                MeterEvent(T0, POWER_DOWN, "0.0.99.98.0.255"),
                MeterEvent(T0 + timedelta(minutes=1), COVER, "0.0.99.98.1.255"),
            ],
        )
    ]
    assert ingest_events(batch).inserted == 2
    changed = alarm_engine.evaluate_meter_events(batch)
    assert {a.kind for a in changed} == {EventKind.POWER_FAILURE, EventKind.TERMINAL_COVER_OPEN}
    stored = list(EventRecord.objects.filter(meter_id=meter.pk))
    assert evaluate_events(stored) == []  # the stored rows are the same events: no change
