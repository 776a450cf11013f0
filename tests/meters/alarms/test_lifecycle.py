"""Acknowledge and clear: who, with what comment, one audit row each, scope enforced."""

import pytest

from accounts.actions import OutOfScope
from accounts.models import ActivityLog
from meters.alarms.actions import AlarmStateError, acknowledge_alarm, clear_alarm
from meters.alarms.models import AlarmState
from tests.meters.alarms.helpers import T0, make_rule, raise_alarm

pytestmark = pytest.mark.django_db


def test_acknowledge_then_clear_by_hand(world):
    make_rule(world.org_a)
    alarm = raise_alarm(world.grid_a.meters[0])
    acked = acknowledge_alarm(alarm, acting_user=world.engineer_a, comment="crew sent", now=T0)
    assert acked.state == AlarmState.ACKNOWLEDGED
    assert acked.acknowledged_by == world.engineer_a and acked.ack_comment == "crew sent"
    assert acked.acknowledged_at == T0
    with pytest.raises(AlarmStateError):
        acknowledge_alarm(acked, acting_user=world.engineer_a)
    cleared = clear_alarm(acked, acting_user=world.engineer_a, comment="fuse replaced")
    assert cleared.state == AlarmState.CLEARED and cleared.cleared_by == world.engineer_a
    with pytest.raises(AlarmStateError):
        clear_alarm(cleared, acting_user=world.engineer_a)
    logs = ActivityLog.objects.filter(object_id=str(alarm.pk)).order_by("pk")
    assert [(log.action, log.user) for log in logs] == [
        ("alarm_acknowledge", world.engineer_a),
        ("alarm_clear", world.engineer_a),
    ]
    assert logs[0].changes["comment"] == "crew sent"
    assert logs[1].changes["state"] == [AlarmState.ACKNOWLEDGED, AlarmState.CLEARED]
    assert logs[0].organisation == world.org_a


def test_other_organisation_cannot_touch_it(world):
    make_rule(world.org_a)
    alarm = raise_alarm(world.grid_a.meters[0])
    for verb in (acknowledge_alarm, clear_alarm):
        with pytest.raises(OutOfScope):
            verb(alarm, acting_user=world.engineer_b)
    # ... nor a user who may only look.
    with pytest.raises(OutOfScope):
        acknowledge_alarm(alarm, acting_user=world.readonly_a)
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.RAISED
    assert not ActivityLog.objects.filter(object_id=str(alarm.pk)).exists()
