"""Bulk commands: above `AMI_COMMAND_APPROVAL_THRESHOLD` meters a second person approves
before anything is queued; at or below, they are queued at once (as batch tasks)."""

from __future__ import annotations

import pytest

from accounts.models import ActivityLog
from collection.commands.kinds import BadCommand
from collection.models import CommandState, MeterCommand
from loadcontrol import actions
from loadcontrol.models import BulkState


@pytest.fixture
def threshold(settings):
    settings.AMI_COMMAND_APPROVAL_THRESHOLD = 1
    return 1


def _meters(world, n):
    meters = list(world.grid_a.meters)[:n]
    assert len(meters) == n
    return meters


def test_a_small_bulk_is_queued_at_once(world, threshold):
    meters = _meters(world, threshold)
    bulk = actions.request_bulk(meters, "disconnect", acting_user=world.operator_a, reason="unpaid")
    assert bulk.state == BulkState.APPROVED and bulk.decided_by is None
    queued = MeterCommand.objects.filter(state=CommandState.QUEUED, kind="disconnect")
    assert sorted(queued.values_list("meter_id", flat=True)) == sorted(m.pk for m in meters)
    assert set(queued.values_list("requested_by", flat=True)) == {world.operator_a.pk}
    assert ActivityLog.objects.filter(action="queue_command").count() == threshold


def test_a_large_bulk_waits_for_a_second_person(world, threshold):
    meters = _meters(world, threshold + 1)
    bulk = actions.request_bulk(meters, "disconnect", acting_user=world.operator_a, reason="unpaid")
    assert bulk.state == BulkState.PENDING
    assert not MeterCommand.objects.exists()
    with pytest.raises(actions.NotAllowed, match="second person"):
        actions.approve_bulk(bulk, acting_user=world.operator_a)  # the requester
    with pytest.raises(actions.NotAllowed):
        actions.approve_bulk(bulk, acting_user=world.engineer_a)  # may not switch supply
    with pytest.raises(actions.NotAllowed):
        actions.approve_bulk(bulk, acting_user=world.operator_b)  # another organisation
    assert not MeterCommand.objects.exists()
    bulk = actions.approve_bulk(bulk, acting_user=world.admin_a)
    assert bulk.state == BulkState.APPROVED and bulk.decided_by == world.admin_a
    queued = MeterCommand.objects.filter(state=CommandState.QUEUED, kind="disconnect")
    assert queued.count() == threshold + 1
    assert set(queued.values_list("requested_by", flat=True)) == {world.operator_a.pk}
    assert ActivityLog.objects.filter(action="approve_bulk_command").count() == 1
    with pytest.raises(actions.NotAllowed, match="already"):
        actions.approve_bulk(bulk, acting_user=world.admin_a)  # approved once only
    assert MeterCommand.objects.count() == threshold + 1


def test_a_rejected_bulk_queues_nothing(world, threshold):
    bulk = actions.request_bulk(
        _meters(world, threshold + 1), "connect", acting_user=world.operator_a, reason="paid"
    )
    bulk = actions.reject_bulk(bulk, acting_user=world.admin_a, reason="wrong list")
    assert bulk.state == BulkState.REJECTED and bulk.decided_by == world.admin_a
    with pytest.raises(actions.NotAllowed):
        actions.approve_bulk(bulk, acting_user=world.admin_a)
    assert not MeterCommand.objects.exists()
    assert ActivityLog.objects.filter(action="reject_bulk_command").count() == 1


def test_who_may_ask_and_for_what(world, threshold):
    meters = _meters(world, 2)
    with pytest.raises(actions.NotAllowed):
        actions.request_bulk(meters, "disconnect", acting_user=world.readonly_a, reason="x")
    with pytest.raises(actions.NotAllowed):
        actions.request_bulk(meters, "disconnect", acting_user=world.operator_b, reason="x")
    with pytest.raises(BadCommand):
        actions.request_bulk(meters, "disconnect", acting_user=world.operator_a)  # no reason
    mixed = [meters[0], list(world.grid_b.meters)[0]]
    with pytest.raises(BadCommand):
        actions.request_bulk(mixed, "disconnect", acting_user=world.superuser, reason="x")
    assert not MeterCommand.objects.exists()
