"""bench/daily_cycle.py's own parts, functionally (no timing): the fleet's layout and the
day's slots found the way beat finds them, from the rows `sync_schedule` writes."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import daily_cycle  # noqa: E402


@pytest.mark.parametrize("n", [1000, 100_000])
def test_the_fleet_plan_places_every_meter_once_on_its_own_port(n):
    plan = daily_cycle.Plan(n, daily_cycle.Ports(24000))
    lines = sum(count for *_x, count, _region in plan.lines)
    dlms = sum(count for _port, _first, count in plan.dlms)
    assert lines + dlms + plan.dead[2] == n
    assert all(count <= daily_cycle.LINE_SIZE for *_x, count, _r in plan.lines)
    assert all(count <= daily_cycle.DLMS_PER_PROCESS for *_x, count in plan.dlms)
    ports = [p for _proto, p, *_x in plan.lines] + [p for p, *_x in plan.dlms] + [plan.dead[0]]
    assert len(set(ports)) == len(ports) and min(ports) == 24000
    assert plan.dead[2] == max(3, n // 4000)
    assert {proto for proto, *_x in plan.lines} == {"iec62056-21", "iec870-102", "modbus"}


@pytest.mark.django_db
def test_the_day_has_one_slot_per_region_job_and_the_catch_up_is_skipped_while_disabled():
    from django_celery_beat.models import PeriodicTask

    from accounts.models import Organisation
    from collection.models import ReadJob

    utility = Organisation.objects.create(name="U", code="u")
    regions = [
        Organisation.objects.create(name=code, code=code, parent=utility)
        for code in daily_cycle.REGIONS
    ]
    jobs, catch_up = daily_cycle.make_jobs(utility, regions)
    slots = daily_cycle.day_slots(datetime(2026, 3, 2, tzinfo=UTC))
    tasks = {job.periodic_task_id: job for job in [*jobs, catch_up]}
    assert [(at.hour, at.minute, tasks[pk].name) for at, pk in slots] == [
        (1, 0, "north: daily"),
        (2, 0, "south: daily"),
        (3, 0, "east: daily"),
        (4, 0, "west: daily"),
        (6, 30, "catch-up: the night's failures"),
    ]
    at, pk = slots[-1]
    assert daily_cycle.send_slot(pk, at) is False  # disabled: beat sends nothing
    assert PeriodicTask.objects.get(pk=pk).total_run_count == 0
    assert ReadJob.objects.get(pk=catch_up.pk).enabled is False
