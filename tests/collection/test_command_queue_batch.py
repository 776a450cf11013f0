"""The batched command path against the DLMS simulator over loopback: one task claims the due
commands of many meters in one transaction, runs their sessions concurrently, records every
outcome in one transaction; the same exactly-once rules as the per-meter task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ActivityLog, Organisation
from collection.commands import actions as commands
from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters
from meters.models import CommStatus, Meter
from tests.collection.test_end_to_end import COMMANDER, register_fleet, simulated_model

pytestmark = pytest.mark.django_db(transaction=True)
COUNT = 8


@pytest.fixture
def sims():
    return make_meters(COUNT)


@pytest.fixture
def fleet(sims):
    with DlmsFleet(sims, interface="wrapper").running_in_thread() as running:
        yield running


@pytest.fixture
def fleet_meters(fleet, sims):
    """COUNT simulated meters registered with the password's client (commands need it)."""
    org = Organisation.objects.create(name="Batch", code="batch")
    register_fleet(fleet, sims, org, simulated_model(org), **COMMANDER, timeout_s=1)
    return list(Meter.objects.filter(organisation=org).order_by("serial"))


def _relays(fleet, sims) -> set[int]:
    """The simulated meters' disconnect control states (0 disconnected, 1 connected)."""
    return {fleet.state_of(s.serial).control_state for s in sims}


def _states(kind: str) -> list[str]:
    return list(MeterCommand.objects.filter(kind=kind).values_list("state", flat=True))


def test_a_bulk_request_runs_as_one_batch_and_every_meter_is_confirmed(
    fleet, fleet_meters, sims, eager_celery, settings
):
    settings.AMI_COMMAND_BATCH_SIZE = COUNT  # one batch task for the whole request
    queued = commands.queue_commands(fleet_meters, "disconnect", acting_user=None, reason="bulk")
    assert len(queued) == COUNT
    assert _states("disconnect") == [CommandState.CONFIRMED] * COUNT
    assert _relays(fleet, sims) == {0}  # every simulated relay is open
    assert MeterCommand.objects.filter(attempts=1, sent_at__isnull=False).count() == COUNT
    relay = CommStatus.objects.filter(meter__in=fleet_meters, relay_state="disconnected")
    assert relay.count() == COUNT
    assert ActivityLog.objects.filter(action="queue_command").count() == COUNT
    audited = ActivityLog.objects.filter(action="command_disconnect", outcome="success")
    assert audited.count() == COUNT
    assert {a.username for a in audited} == {"collection"}
    # And back: the same batch path, all reconnected.
    commands.queue_commands(fleet_meters, "connect", acting_user=None, reason="paid")
    assert _states("connect") == [CommandState.CONFIRMED] * COUNT
    assert _relays(fleet, sims) == {1}
    relay = CommStatus.objects.filter(meter__in=fleet_meters, relay_state="connected")
    assert relay.count() == COUNT


def _queue(meters, kind: str) -> list[int]:
    """Command rows as `queue_commands` leaves them, without starting their task."""
    MeterCommand.objects.bulk_create(
        MeterCommand(
            organisation_id=m.organisation_id,
            meter=m,
            kind=kind,
            expires_at=timezone.now() + timedelta(hours=1),
        )
        for m in meters
    )
    return [m.pk for m in meters]


def test_a_redelivered_batch_sends_nothing_twice(fleet, fleet_meters, sims):
    ids = _queue(fleet_meters, "disconnect")
    done = commands.execute_command_batch(ids, claim="batch-1")
    assert done == {"confirmed": COUNT, "failed": 0, "retrying": 0, "sessions": COUNT}
    # The same task delivered again (acks_late after a crash past the commit), or another
    # batch over the same meters: nothing to do.
    assert commands.execute_command_batch(ids, claim="batch-1")["sessions"] == 0
    assert commands.execute_command_batch(ids, claim="batch-2")["sessions"] == 0
    assert MeterCommand.objects.filter(attempts=1).count() == COUNT


def test_a_batch_killed_after_its_claim_reads_back_before_it_sends(fleet, fleet_meters, sims):
    ids = _queue(fleet_meters, "disconnect")
    claimed = commands._claim_many(ids, "batch-1", wait=False)  # then the worker died
    assert sorted(claimed) == sorted(ids)
    # While batch-1's commands are out, no other claim opens a session with those meters,
    # whether a batch or a meter's own task.
    assert commands.execute_command_batch(ids, claim="batch-2")["sessions"] == 0
    assert commands.execute_commands(ids[0], claim="task-x")["sessions"] == 0
    # batch-1 redelivered reads the relays back first: the claim never reached the meters
    # (they are still connected), so each is switched now, its one execution.
    done = commands.execute_command_batch(ids, claim="batch-1")
    assert done == {"confirmed": COUNT, "failed": 0, "retrying": 0, "sessions": COUNT}
    assert _relays(fleet, sims) == {0}
    assert [len(fleet.state_of(s.serial).off_spans) for s in sims] == [1] * COUNT
    confirmed = MeterCommand.objects.filter(state=CommandState.CONFIRMED, attempts=1)
    assert confirmed.count() == COUNT
    # Delivered once more: nothing left to do, nothing switched again.
    assert commands.execute_command_batch(ids, claim="batch-1")["sessions"] == 0


def test_one_meter_failing_does_not_fail_its_neighbours(fleet, fleet_meters, sims):
    sims[3].fault = Fault("timeout")  # accepts, never answers
    ids = _queue(fleet_meters, "disconnect")
    MeterCommand.objects.update(max_attempts=1)
    done = commands.execute_command_batch(ids, claim="batch-1")
    assert done == {"confirmed": COUNT - 1, "failed": 1, "retrying": 0, "sessions": COUNT}
    silent = MeterCommand.objects.get(meter=fleet_meters[3])
    assert silent.state == CommandState.FAILED and silent.error_kind
    others = MeterCommand.objects.exclude(meter=fleet_meters[3])
    assert set(others.values_list("state", flat=True)) == {CommandState.CONFIRMED}
    failed = ActivityLog.objects.filter(action="command_disconnect", outcome="failed")
    assert list(failed.values_list("object_id", flat=True)) == [str(fleet_meters[3].pk)]
    assert not CommStatus.objects.filter(meter=fleet_meters[3], relay_state="disconnected")
