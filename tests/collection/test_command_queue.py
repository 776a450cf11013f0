"""The command queue against the DLMS simulator over loopback, through the Celery task.

A command's life: queued -> sent -> confirmed by the meter's read-back, or failed (after its
retries) / expired / cancelled; one session per meter for all its due commands; a task
redelivered after a crash sends nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ActivityLog, User
from collection.commands import actions as commands
from collection.commands.kinds import PRIORITY_EMERGENCY, BadCommand
from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters
from meters.demo import load_demo
from meters.models import CommStatus, Meter
from tests.collection.test_on_demand import point_meter_at as point_public_meter_at

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fleet():
    meters = make_meters(2)
    meters[1].fault = Fault("timeout")
    with DlmsFleet(meters, interface="wrapper").running_in_thread() as running:
        yield running


@pytest.fixture
def no_backoff(settings):
    settings.AMI_COMMAND_RETRY_BACKOFF_S = 0


def point_meter_at(meter, fleet, serial):
    """The meter on the simulator, associated with the password (commands need more than
    the public client)."""
    meter = point_public_meter_at(meter, fleet, serial)
    meter.security, meter.password, meter.dlms_client_address = "low", "12345678", 17
    meter.save()
    return meter


def _relay(meter) -> str:
    return CommStatus.objects.get(meter=meter).relay_state


def test_disconnect_then_connect_are_confirmed_by_the_read_back(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    off = commands.queue_command(
        meter, "disconnect", acting_user=world.operator_a, reason="unpaid bill"
    )
    off.refresh_from_db()
    assert off.state == CommandState.CONFIRMED, off.error
    assert off.answer == {"connected": False, "control_state": "disconnected"}
    assert off.attempts == 1 and off.sent_at and off.finished_at
    assert _relay(meter) == "disconnected"
    on = commands.queue_command(meter, "connect", acting_user=world.operator_a, reason="paid")
    on.refresh_from_db()
    assert on.state == CommandState.CONFIRMED, on.error
    assert on.answer["connected"] is True
    assert _relay(meter) == "connected"
    actions = list(
        ActivityLog.objects.filter(object_id=str(meter.pk)).values_list("action", "outcome")
    )
    assert ("queue_command", "success") in actions
    assert ("command_disconnect", "success") in actions
    assert ("command_connect", "success") in actions


def test_ready_for_reconnection_is_confirmed_by_the_read_back(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    armed = commands.queue_command(
        meter,
        "ready_for_reconnection",
        acting_user=world.operator_a,
        reason="paid: customer on site",
    )
    armed.refresh_from_db()
    assert armed.state == CommandState.CONFIRMED, armed.error
    assert armed.answer == {"connected": False, "control_state": "ready_for_reconnection"}
    assert _relay(meter) == "ready_for_reconnection"
    assert fleet.state_of("90000001").control_mode == 2  # put back after arming


def test_a_silent_meter_fails_after_its_retries(world, fleet, eager_celery, no_backoff):
    meter = point_meter_at(world.grid_a.meters[1], fleet, "90000002")
    meter.timeout_s = 1
    meter.save()
    command = commands.queue_command(
        meter, "disconnect", acting_user=world.operator_a, max_attempts=2
    )
    command.refresh_from_db()
    assert command.state == CommandState.FAILED
    assert command.attempts == 2
    assert command.error_kind and command.error
    assert not CommStatus.objects.filter(meter=meter, relay_state="disconnected").exists()
    assert ActivityLog.objects.filter(action="command_disconnect", outcome="failed").count() == 1


def test_an_expired_command_is_never_sent(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    command = commands.queue_command(
        meter, "disconnect", acting_user=world.operator_a, expires_in=timedelta(0)
    )
    command.refresh_from_db()
    assert command.state == CommandState.EXPIRED and command.attempts == 0
    assert _relay_unknown_or_connected(meter)


def _relay_unknown_or_connected(meter) -> bool:
    status = CommStatus.objects.filter(meter=meter).first()
    return status is None or status.relay_state != "disconnected"


def _queued(meter, kind, user, **extra) -> MeterCommand:
    """A command row as `queue_command` leaves it, without starting its task."""
    return MeterCommand.objects.create(
        organisation=meter.organisation,
        meter=meter,
        kind=kind,
        requested_by=user,
        expires_at=timezone.now() + timedelta(hours=1),
        **extra,
    )


def test_one_session_bundles_a_meters_commands_emergency_first(world, fleet):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    read = _queued(meter, "relay_read", world.operator_a)
    off = _queued(meter, "disconnect", world.operator_a, priority=PRIORITY_EMERGENCY)
    done = commands.execute_commands(meter.pk, claim="task-1")
    assert done == {"confirmed": 2, "failed": 0, "retrying": 0, "sessions": 1}
    read.refresh_from_db()
    off.refresh_from_db()
    assert off.sent_at <= read.sent_at
    # The emergency disconnect went first: the read after it sees the relay open.
    assert read.answer["control_state"] == "disconnected"


def test_a_redelivered_task_sends_nothing_twice(world, fleet):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    off = _queued(meter, "disconnect", world.operator_a)
    assert commands.execute_commands(meter.pk, claim="task-1")["confirmed"] == 1
    # The same task delivered again (acks_late after a crash past the commit): nothing to do.
    assert commands.execute_commands(meter.pk, claim="task-1")["sessions"] == 0
    # Another task for the meter: nothing either.
    assert commands.execute_commands(meter.pk, claim="task-2")["sessions"] == 0
    off.refresh_from_db()
    assert off.state == CommandState.CONFIRMED and off.attempts == 1


def test_a_worker_killed_after_the_claim_only_reads_back(world, fleet):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    on = _queued(meter, "connect", world.operator_a)
    steps = commands._claim(meter.pk, "task-1")  # claimed and sent, then the worker died
    assert [s.command_id for s in steps] == [on.pk]
    # While task-1's command is out, no other task opens a session with the meter.
    later = _queued(meter, "relay_read", world.operator_a)
    assert commands.execute_commands(meter.pk, claim="task-2")["sessions"] == 0
    # task-1 redelivered: reads the relay back instead of switching it again.
    done = commands.execute_commands(meter.pk, claim="task-1")
    on.refresh_from_db()
    later.refresh_from_db()
    assert on.state == CommandState.CONFIRMED and on.attempts == 1  # the relay is connected
    assert later.state == CommandState.CONFIRMED
    assert done["sessions"] == 1


def test_a_command_whose_task_was_lost_is_requeued_and_executed_once(
    world, fleet, eager_celery, settings
):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    off = _queued(meter, "disconnect", world.operator_a)
    commands._claim(meter.pk, "lost-task-1")  # claimed; the worker died, the broker lost it
    assert commands.requeue_lost_commands() == 0  # not lost yet
    later = timezone.now() + timedelta(seconds=settings.AMI_COMMAND_LOST_AFTER_S + 1)
    assert commands.requeue_lost_commands(now=later) == 1  # its task again, same claim
    off.refresh_from_db()
    assert off.state == CommandState.CONFIRMED, off.error
    assert off.attempts == 1 and off.claim == "lost-task-1"
    # The meter never had it: the requeued task read back, then switched it, once.
    assert len(fleet.state_of("90000001").off_spans) == 1
    assert commands.requeue_lost_commands(now=later) == 0


def test_a_lost_command_the_meter_had_received_is_only_read_back(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    commands.queue_command(meter, "disconnect", acting_user=world.operator_a, reason="unpaid")
    on = _queued(meter, "connect", world.operator_a)
    commands._claim(meter.pk, "lost-task-2")
    commands.execute_commands(meter.pk, claim="other")  # nothing: the meter is claimed
    fleet.state_of("90000001").control_state = 1  # it had reached the meter before the crash
    spans = len(fleet.state_of("90000001").off_spans)
    later = timezone.now() + timedelta(hours=1, seconds=-1)
    assert commands.requeue_lost_commands(now=later) == 1
    on.refresh_from_db()
    assert on.state == CommandState.CONFIRMED and on.answer["connected"] is True
    assert len(fleet.state_of("90000001").off_spans) == spans  # no second switching


def test_a_sent_command_whose_worker_never_came_back_fails_when_it_expires(world, fleet):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    off = _queued(meter, "disconnect", world.operator_a)
    commands._claim(meter.pk, "task-1")
    assert commands.expire_commands(now=off.expires_at) == 1
    off.refresh_from_db()
    assert off.state == CommandState.FAILED and off.error_kind == "Interrupted"


def test_cancel_only_what_is_still_queued(world, fleet):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    first = _queued(meter, "disconnect", world.operator_a)
    commands.cancel_command(first, acting_user=world.operator_a, reason="paid at the counter")
    first.refresh_from_db()
    assert first.state == CommandState.CANCELLED
    assert commands.execute_commands(meter.pk, claim="task-1")["sessions"] == 0
    with pytest.raises(commands.NotCancellable):
        commands.cancel_command(first, acting_user=world.operator_a)


def test_unknown_kinds_and_parameters_are_refused(world):
    meter = world.grid_a.meters[0]
    with pytest.raises(BadCommand):
        commands.queue_command(meter, "explode", acting_user=world.operator_a)
    with pytest.raises(BadCommand):
        commands.queue_command(meter, "connect", acting_user=world.operator_a, parameters={"x": 1})
    assert not MeterCommand.objects.exists()


def test_a_demo_meter_switches_as_the_demo_registers_it(eager_celery):
    """`make run`'s customer meters: the relay buttons work with the client and password the
    demo registers (the public client may only read: every command failed, read-write-denied)."""
    load_demo()
    meter = Meter.objects.get(serial="90000010")
    with DlmsFleet(make_meters(1, first_serial=90000010), interface="wrapper").running_in_thread(
    ) as running:  # fmt: skip
        address = running.address_of(meter.serial)
        meter.port, meter.dlms_server_address = address.port, address.server_address
        meter.save()  # where this test's simulator listens; security, client, password kept
        operator = User.objects.get(username="north-operator")
        off = commands.queue_command(meter, "disconnect", acting_user=operator, reason="test")
        off.refresh_from_db()
        assert off.state == CommandState.CONFIRMED, off.error
        assert _relay(meter) == "disconnected"
