"""kill -9 of a Celery worker while it switches meters, then a new worker: every command ends
confirmed, each meter switched once (read back before anything is sent again); also when the
broker lost the task too (requeued). Real worker processes, real Redis broker, PostgreSQL, the
DLMS simulator over loopback."""

from __future__ import annotations

import time

import pytest
import redis

from accounts.models import Organisation
from amisite.celery import app
from collection.commands import actions as commands
from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import Fault, make_meters
from meters.models import Meter
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import COMMANDER, register_fleet, simulated_model
from tests.collection.test_worker_crash import (
    kill_group,
    start_worker,
    unacked_none_or_older_than_visibility,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
COUNT = 12


def test_killed_worker_mid_commands_then_a_new_worker_finishes_them_once():
    app.control.purge()
    org = Organisation.objects.create(name="Crash", code="crash")
    model = simulated_model(org)
    sims = make_meters(COUNT)
    for s in sims:
        s.fault = Fault("late", delay_s=0.4)  # slow enough to be caught mid-command
    with fleet_thread(sims, interface="wrapper") as fleet:
        register_fleet(fleet, sims, org, model, **COMMANDER)
        meters = list(Meter.objects.filter(organisation=org).order_by("serial"))
        first = start_worker("first")
        try:
            queued = [
                commands.queue_command(m, "disconnect", acting_user=None, reason="crash test")
                for m in meters
            ]
            wait_for(
                lambda: MeterCommand.objects.filter(state=CommandState.CONFIRMED).count() >= 2,
                60,
                "the first commands to be confirmed",
            )
        finally:
            kill_group(first)
        final = MeterCommand.objects.exclude(state__in=[CommandState.QUEUED, CommandState.SENT])
        assert final.count() < COUNT  # killed mid-way
        # One task per meter: the kill may fall between an acknowledgement and the next fetch,
        # when nothing is unacknowledged and the rest simply wait in the queue.
        wait_for(
            unacked_none_or_older_than_visibility, 30, "the unacknowledged task to become visible"
        )
        second = start_worker("second")
        try:
            wait_for(
                lambda: (
                    not MeterCommand.objects.filter(
                        state__in=[CommandState.QUEUED, CommandState.SENT]
                    ).exists()
                ),
                120,
                "every command to finish",
            )
        finally:
            kill_group(second)
        fleet_states = [fleet.state_of(s.serial) for s in sims]
    _finished_once(queued, fleet_states)


def _finished_once(queued, states) -> None:
    """Each command claimed once (one attempt) and confirmed; each meter switched once (its
    relay opened once, whether the killed worker had sent it or the new one did after reading
    back that it had not arrived)."""
    rows = list(MeterCommand.objects.filter(pk__in=[c.pk for c in queued]))
    assert {c.attempts for c in rows} == {1}
    for c in rows:
        assert c.state == CommandState.CONFIRMED, (c.state, c.error_kind, c.error)
    assert [len(state.off_spans) for state in states] == [1] * len(rows)


def test_killed_worker_whose_task_the_broker_lost_is_requeued_and_finished_once(settings):
    """The worker dies and its unacknowledged message is gone too (a broker restart without
    persistence): nothing redelivers it; the requeue sweep gives the task again under its own
    claim and a new worker finishes every command, each switched once."""
    app.control.purge()
    org = Organisation.objects.create(name="Lost", code="lost")
    model = simulated_model(org)
    sims = make_meters(COUNT)
    for s in sims:
        s.fault = Fault("late", delay_s=0.4)
    with fleet_thread(sims, interface="wrapper") as fleet:
        register_fleet(fleet, sims, org, model, **COMMANDER)
        meters = list(Meter.objects.filter(organisation=org).order_by("serial"))
        first = start_worker("first")
        try:
            queued = [  # a task per meter: the worker is caught with some still to send
                commands.queue_command(m, "disconnect", acting_user=None, reason="lost task")
                for m in meters
            ]
            wait_for(
                lambda: MeterCommand.objects.filter(state=CommandState.CONFIRMED).count() >= 2,
                60,
                "the first commands to be confirmed",
            )
        finally:
            kill_group(first)
        unfinished = MeterCommand.objects.filter(state__in=[CommandState.QUEUED, CommandState.SENT])
        assert unfinished.exists()  # mid-way (one sent if the kill caught it mid-session)
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete("unacked", "unacked_index")  # the message is lost with the worker
        app.control.purge()
        settings.AMI_COMMAND_LOST_AFTER_S = 1  # the sweep's wait, shortened (in this process)
        time.sleep(1.5)
        assert commands.requeue_lost_commands() >= 1
        second = start_worker("second")
        try:
            wait_for(
                lambda: (
                    not MeterCommand.objects.filter(
                        state__in=[CommandState.QUEUED, CommandState.SENT]
                    ).exists()
                ),
                120,
                "every command to finish",
            )
        finally:
            kill_group(second)
        _finished_once(queued, [fleet.state_of(s.serial) for s in sims])
