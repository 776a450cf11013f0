"""One session at a time per shared line across processes (collection/linelock.py), on the
suite's real Redis: a line's slots, a bounded wait ending in LineBusy, turns between a
process reading meter after meter and one waiting, a killed holder's lease running out, and
an on-demand read that finds its line held by another process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from accounts.models import Organisation
from amisite.celery import app
from collection import actions
from collection.linelock import LineBusy, LineLocks
from collection.models import JobRun
from meters.choices import MeterStatus, Transport
from meters.models import CommStatus, DataConcentrator, Meter, MeterModel
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def _line() -> str:
    return f"test-line-{uuid.uuid4().hex[:8]}"


def _locks(**kwargs) -> LineLocks:
    return LineLocks(django_settings.REDIS_URL, **kwargs)


def test_a_line_takes_its_slots_and_then_says_busy():
    line = _line()

    async def main():
        a, b, c = _locks(), _locks(wait_s=0.5, poll_s=0.05), _locks(wait_s=0.5, poll_s=0.05)
        try:
            async with a.hold(line):
                with pytest.raises(LineBusy) as busy:
                    async with b.hold(line):
                        pass
                async with c.hold(line, slots=2):  # a line that takes two sessions
                    pass
            async with b.hold(line):  # free again once released
                pass
            return str(busy.value)
        finally:
            for locks in (a, b, c):
                await locks.close()

    message = asyncio.run(main())
    assert line in message and "busy" in message and "0.5 s" in message


def test_a_waiting_process_gets_its_turn_between_another_ones_sessions():
    """A job reading meter after meter releases and takes the line again at once; a process
    that waits is let in at the next turn, not after the whole job."""
    line = _line()
    order: list[str] = []

    async def job(locks):
        for i in range(8):
            async with locks.hold(line):
                order.append(f"job{i}")
                await asyncio.sleep(0.1)

    async def on_demand(locks):
        await asyncio.sleep(0.05)  # the job holds the line by now
        async with locks.hold(line):
            order.append("read")

    async def main():
        a, b = _locks(poll_s=0.02), _locks(poll_s=0.02)
        try:
            await asyncio.gather(job(a), on_demand(b))
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())
    assert order.index("read") <= 2, order


HOLDER = """
import asyncio, sys
from collection.linelock import LineLocks

async def main():
    locks = LineLocks(sys.argv[1], ttl_s=2)
    async with locks.hold(sys.argv[2]):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def _holder(line: str) -> subprocess.Popen:
    """Another process holding `line` (its lease renewed while it lives)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, django_settings.REDIS_URL, line],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_killed_holders_line_is_free_once_its_lease_runs_out():
    line = _line()
    holder = _holder(line)
    try:

        async def attempt(wait_s):
            locks = _locks(wait_s=wait_s, poll_s=0.1)
            try:
                async with locks.hold(line):
                    return "held"
            except LineBusy:
                return "busy"
            finally:
                await locks.close()

        # Alive, it renews its 2-second lease: still busy after three seconds.
        assert asyncio.run(attempt(3.0)) == "busy"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        # Killed: nothing releases it, its lease runs out.
        assert asyncio.run(attempt(10.0)) == "held"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


@pytest.mark.django_db(transaction=True)
def test_an_on_demand_read_waits_for_a_line_another_process_holds(settings):
    """The meter behind a concentrator another process is talking to is not tried: its read
    fails as LineBusy after the bounded wait, which counts against neither it nor the line."""
    settings.AMI_LINE_WAIT_S = 1.0
    app.conf.task_always_eager = True
    org = Organisation.objects.create(name="Busy", code="busy")
    model = MeterModel.objects.create(manufacturer="Sim", name="DLMS", organisation=org)
    dc = DataConcentrator.objects.create(
        serial="DC-BUSY", organisation=org, host="127.0.0.1", port=9, timeout_s=1, retries=0
    )
    meter = Meter.objects.create(
        serial="BUSY-1", meter_model=model, organisation=org, status=MeterStatus.ACTIVE,
        transport=Transport.CONCENTRATOR, concentrator=dc, timeout_s=1, retries=0,
    )  # fmt: skip
    user = make_user("busy-op", org, "operator")
    holder = _holder(f"concentrator:{dc.pk}")
    try:
        run = actions.request_on_demand_read(meter, ["registers"], acting_user=user)
    finally:
        holder.kill()
        holder.wait(10)
        app.conf.task_always_eager = False
    result = JobRun.objects.get(pk=run.pk).results.get()
    assert (result.status, result.error_kind) == ("failed", "LineBusy")
    assert "busy" in result.error and "busy: not tried" in result.notes
    status = CommStatus.objects.get(meter=meter)
    assert status.consecutive_failures == 0 and not status.unreachable
