"""kill -9 of a Celery worker while it switches meters, then a new worker: every command ends
(confirmed, or failed by its read-back), none is sent twice (real worker processes, real
Redis broker, PostgreSQL, the DLMS simulator over loopback)."""

from __future__ import annotations

import pytest

from accounts.models import Organisation
from collection.commands import actions as commands
from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import Fault, make_meters
from meters.models import Meter
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import COMMANDER, register_fleet, simulated_model
from tests.collection.test_worker_crash import (
    kill_group,
    start_worker,
    unacked_older_than_visibility,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
COUNT = 12


def test_killed_worker_mid_commands_then_a_new_worker_finishes_them_once():
    from amisite.celery import app

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
        wait_for(unacked_older_than_visibility, 30, "the unacknowledged task to become visible")
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
    rows = list(MeterCommand.objects.filter(pk__in=[c.pk for c in queued]))
    # Each command was sent at most once: one claim, one attempt.
    assert {c.attempts for c in rows} == {1}
    # What the meter reads back decides: the disconnect took (confirmed) or never left the
    # killed worker (the read-back says connected: failed, not sent again).
    for c in rows:
        assert c.state in (CommandState.CONFIRMED, CommandState.FAILED), (c.state, c.error)
        if c.state == CommandState.FAILED:
            assert c.error_kind == "NotConfirmed" and c.answer["control_state"] == "connected"
    assert sum(c.state == CommandState.CONFIRMED for c in rows) >= COUNT - 1
