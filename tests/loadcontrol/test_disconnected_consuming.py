""" "Disconnected but consuming": a meter whose relay is read open and whose import register
keeps advancing raises an alarm; an honest meter (the simulator records nothing while its
relay is open) raises none. On the DLMS simulator over loopback, through the command queue and
the reading path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from collection import actions as collection_actions
from collection.commands import actions as commands
from collection.relay import record_relay_states as record
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from meters.alarms import engine as alarm_engine
from meters.alarms.engine import evaluate_events
from meters.alarms.events import EventKind
from meters.models import CommStatus
from tests.collection.test_command_queue import point_meter_at
from tests.meters.alarms.helpers import make_rule

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now


def test_a_bypassed_relay_read_open_raises_the_alarm(world, eager_celery, settings):
    settings.AMI_ALARM_DISCONNECTED_GRACE_S = 0
    make_rule(world.org_a, kinds=[EventKind.CONSUMPTION_WHILE_DISCONNECTED])
    sims = make_meters(2)
    sims[0].relay_bypassed = True  # tampered: goes on recording while open
    clock = Clock()
    with DlmsFleet(sims, interface="wrapper", now=clock).running_in_thread() as fleet:
        tampered = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        honest = point_meter_at(world.grid_a.meters[1], fleet, "90000002")

        def read_both():
            for meter in (tampered, honest):
                # With the clock, the registers are stamped by the meter's time (3 h apart);
                # without it both reads could fall in one second of the server's and merge.
                collection_actions.request_on_demand_read(
                    meter, ["clock", "registers"], acting_user=world.operator_a
                )

        read_both()  # the registers before
        for meter in (tampered, honest):
            commands.queue_command(
                meter, "disconnect", acting_user=world.operator_a, reason="unpaid"
            )
        states = dict(CommStatus.objects.values_list("meter_id", "relay_state"))
        assert states == {tampered.pk: "disconnected", honest.pk: "disconnected"}
        assert CommStatus.objects.get(meter=tampered).relay_open_since is not None
        clock.now += timedelta(hours=3)  # three hours of the customers' use go by
        read_both()
    alarms = evaluate_events(
        alarm_engine.derive_consumption_while_disconnected(now=timezone.now() + timedelta(1))
    )
    assert [a.meter_id for a in alarms] == [tampered.pk]
    assert alarms[0].kind == EventKind.CONSUMPTION_WHILE_DISCONNECTED


def test_a_read_that_finds_the_relay_closed_ends_the_open_streak(world):
    meter = world.grid_a.meters[0]
    at = timezone.now()

    def record_relay_states(seen):
        with transaction.atomic():
            record(seen)

    record_relay_states({meter.pk: ("disconnected", at)})
    record_relay_states({meter.pk: ("ready_for_reconnection", at + timedelta(minutes=5))})
    assert CommStatus.objects.get(meter=meter).relay_open_since == at  # still the first
    record_relay_states({meter.pk: ("connected", at + timedelta(minutes=9))})
    assert CommStatus.objects.get(meter=meter).relay_open_since is None
    record_relay_states({meter.pk: ("disconnected", at + timedelta(minutes=7))})  # older: no
    assert CommStatus.objects.get(meter=meter).relay_state == "connected"
