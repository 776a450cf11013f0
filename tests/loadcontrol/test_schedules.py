"""Scheduled load control: slots in the utility's time zone across DST, switched off once and
restored once by the scheduler's tick, overlaps resolved by union and shown before saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from collection.models import MeterCommand
from loadcontrol import recurrence, schedules
from loadcontrol.actions import NotAllowed
from loadcontrol.models import LoadSchedule, LoadSlot, ScheduleState, SlotState
from meters.models import CommStatus

BERLIN = ZoneInfo("Europe/Berlin")


def _local(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def test_slots_keep_local_time_and_elapsed_duration_across_both_dst_changes():
    rule = recurrence.Rule(date(2026, 3, 28), time(18, 0), timedelta(hours=4), recurrence.DAILY)
    found = recurrence.slots(rule, BERLIN, _local(2026, 3, 28), _local(2026, 3, 31))
    assert [s.astimezone(BERLIN).hour for s, _e in found] == [18, 18, 18]
    assert [(e - s) for s, e in found] == [timedelta(hours=4)] * 3
    assert [s.utcoffset() for s, _e in found] == [timedelta(0)] * 3
    assert [s.astimezone(BERLIN).utcoffset().seconds // 3600 for s, _e in found] == [1, 2, 2]
    # A slot across the change: 4 elapsed hours, so the wall clock shows 5 (spring forward).
    night = recurrence.Rule(date(2026, 3, 29), time(0, 30), timedelta(hours=4))
    ((start, end),) = recurrence.slots(night, BERLIN, _local(2026, 3, 28), _local(2026, 3, 30))
    assert end.astimezone(BERLIN).time() == time(5, 30)
    # 02:30 does not exist on 29 March (moved on by the skipped hour); on 25 October it
    # happens twice (the first one).
    gap = recurrence.local_start(date(2026, 3, 29), time(2, 30), BERLIN)
    assert gap.astimezone(BERLIN).time() == time(3, 30)
    twice = recurrence.local_start(date(2026, 10, 25), time(2, 30), BERLIN)
    assert twice == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not CET
    weekly = recurrence.Rule(
        date(2026, 10, 19), time(7, 0), timedelta(hours=1), recurrence.WEEKLY, weekdays=(6,)
    )
    (sunday,) = recurrence.slots(weekly, BERLIN, _local(2026, 10, 20), _local(2026, 10, 27))
    assert sunday[0] == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)  # 07:00 CET after the change


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"


def _schedule(world, meters, *, name="Evening peak", at=time(18, 0), hours=4, **rule):
    schedule = LoadSchedule(
        organisation=world.org_a,
        name=name,
        meter_ids=[m.pk for m in meters],
        starts_on=rule.pop("starts_on", date(2026, 10, 24)),
        at=at,
        duration_minutes=hours * 60,
        reason="peak shaving",
        **rule,
    )
    return schedules.create_schedule(schedule, acting_user=world.operator_a)


def _sent(kind) -> list[int]:
    return sorted(MeterCommand.objects.filter(kind=kind).values_list("meter_id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_each_slot_is_switched_off_once_and_restored_once_across_dst(world, berlin):
    meters = world.grid_a.meters
    schedule = _schedule(world, meters, recurrence="daily", until=date(2026, 10, 25))
    before = _local(2026, 10, 24, 17, 59)
    assert schedules.run(before) == {"off": 0, "restored": 0, "missed": 0}
    assert LoadSlot.objects.count() == 2  # the 24th and the 25th (the 25-hour day)
    on = _local(2026, 10, 24, 18, 0)
    assert schedules.run(on)["off"] == 1
    assert schedules.run(on + timedelta(seconds=30))["off"] == 0  # a second tick: nothing
    assert _sent("disconnect") == sorted(m.pk for m in meters)
    assert set(MeterCommand.objects.values_list("origin", flat=True)) == {schedule.origin}
    assert schedules.run(_local(2026, 10, 24, 22, 0))["restored"] == 1
    assert schedules.run(_local(2026, 10, 24, 22, 1))["restored"] == 0
    assert _sent("connect") == sorted(m.pk for m in meters)
    # Sunday 25 October (CET from 03:00): 18:00 local is 17:00 UTC.
    sunday = LoadSlot.objects.get(starts_at__date=date(2026, 10, 25))
    assert sunday.starts_at == datetime(2026, 10, 25, 17, 0, tzinfo=UTC)
    assert sunday.ends_at == datetime(2026, 10, 25, 21, 0, tzinfo=UTC)
    schedules.run(datetime(2026, 10, 25, 17, 0, tzinfo=UTC))
    schedules.run(datetime(2026, 10, 25, 21, 0, tzinfo=UTC))
    assert MeterCommand.objects.filter(kind="disconnect").count() == 2 * len(meters)
    assert MeterCommand.objects.filter(kind="connect").count() == 2 * len(meters)
    assert schedules.run(_local(2026, 10, 27, 18, 0)) == {"off": 0, "restored": 0, "missed": 0}


@pytest.mark.django_db(transaction=True)
def test_overlaps_are_shown_before_saving_and_resolve_by_union(world, berlin):
    meter, other = world.grid_a.meters
    _schedule(world, [meter, other], name="Early", at=time(18, 0), hours=2)
    late = LoadSchedule(
        organisation=world.org_a, name="Late", meter_ids=[meter.pk], starts_on=date(2026, 10, 24),
        at=time(19, 0), duration_minutes=120, reason="works",
    )  # fmt: skip
    shown = schedules.preview(late, now=_local(2026, 10, 24, 12, 0))
    (overlap,) = shown["overlaps"]
    assert overlap["name"] == "Early" and overlap["meters"] == 1
    assert overlap["spans"] == [(_local(2026, 10, 24, 19, 0), _local(2026, 10, 24, 20, 0))]
    schedules.create_schedule(late, acting_user=world.operator_a)
    schedules.run(_local(2026, 10, 24, 18, 0))
    schedules.run(_local(2026, 10, 24, 19, 0))  # the meter is off already: not sent again
    assert _sent("disconnect") == sorted([meter.pk, other.pk])
    schedules.run(_local(2026, 10, 24, 20, 0))  # Early ends: Late still holds the meter
    assert _sent("connect") == [other.pk]
    schedules.run(_local(2026, 10, 24, 21, 0))  # Late ends: the last holder restores it
    assert _sent("connect") == sorted([meter.pk, other.pk])


@pytest.mark.django_db(transaction=True)
def test_a_meter_off_for_another_reason_is_left_alone(world, berlin):
    meter, other = world.grid_a.meters
    CommStatus.objects.create(meter=meter, relay_state="disconnected")  # unpaid, say
    _schedule(world, [meter, other])
    schedules.run(_local(2026, 10, 24, 18, 0))
    schedules.run(_local(2026, 10, 24, 22, 0))
    assert _sent("disconnect") == _sent("connect") == [other.pk]
    assert LoadSlot.objects.get().left_alone == [meter.pk]


@pytest.mark.django_db(transaction=True)
def test_a_slot_the_scheduler_never_saw_is_missed_and_a_cancelled_one_restores(world, berlin):
    _schedule(world, world.grid_a.meters, recurrence="daily")
    schedules.plan(_local(2026, 10, 24, 12, 0))
    assert schedules.run(_local(2026, 10, 24, 23, 0))["missed"] == 1  # down all evening
    assert not MeterCommand.objects.exists()
    schedules.run(_local(2026, 10, 25, 18, 0))
    schedule = LoadSchedule.objects.get()
    with pytest.raises(NotAllowed):
        schedules.cancel_schedule(schedule, acting_user=world.readonly_a)
    schedules.cancel_schedule(schedule, acting_user=world.admin_a, now=_local(2026, 10, 25, 19, 0))
    assert len(_sent("connect")) == 2
    assert not LoadSlot.objects.filter(state=SlotState.PLANNED).exists()
    assert schedules.run(_local(2026, 10, 26, 18, 0))["off"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_large_schedule_waits_for_a_second_person(world, berlin, settings):
    settings.AMI_COMMAND_APPROVAL_THRESHOLD = 1
    schedule = _schedule(world, world.grid_a.meters)
    assert schedule.state == ScheduleState.PENDING
    schedules.run(_local(2026, 10, 24, 18, 0))
    assert not MeterCommand.objects.exists()
    with pytest.raises(NotAllowed):
        schedules.approve_schedule(schedule, acting_user=world.operator_a)  # its author
    schedules.approve_schedule(schedule, acting_user=world.admin_a)
    schedules.run(_local(2026, 10, 24, 18, 1))
    assert len(_sent("disconnect")) == 2


@pytest.mark.django_db(transaction=True)
def test_a_change_replans_the_slots_and_a_slot_on_now_ends_as_planned(world, berlin):
    from accounts.models import ActivityLog
    from loadcontrol.actions import Conflict

    meters = world.grid_a.meters
    schedule = _schedule(world, meters, recurrence="daily", until=date(2026, 10, 26))
    assert schedules.run(_local(2026, 10, 24, 18, 0))["off"] == 1
    assert LoadSlot.objects.filter(state=SlotState.PLANNED).exists()
    edited = LoadSchedule(
        organisation=world.org_a,
        name="Later",
        meter_ids=[meters[0].pk],
        starts_on=date(2026, 10, 24),
        at=time(19, 0),
        duration_minutes=60,
        recurrence="daily",
        until=date(2026, 10, 26),
        reason="moved",
    )
    with pytest.raises(NotAllowed):
        schedules.update_schedule(schedule, edited, acting_user=world.readonly_a)
    schedules.update_schedule(schedule, edited, acting_user=world.operator_a)
    schedule.refresh_from_db()
    assert (schedule.name, schedule.at, schedule.meter_ids) == (
        "Later",
        time(19, 0),
        [meters[0].pk],
    )
    assert not LoadSlot.objects.filter(state=SlotState.PLANNED).exists()  # the old rule's
    running = LoadSlot.objects.get(state=SlotState.OFF)
    assert running.ends_at == _local(2026, 10, 24, 22, 0)  # on now: ends as it was planned
    log = ActivityLog.objects.get(action="update_load_schedule")
    assert log.changes["at"] == ["18:00:00", "19:00:00"] and log.changes["meter_ids"] == [2, 1]
    schedules.run(_local(2026, 10, 24, 18, 30))  # the next tick plans the new rule
    planned = LoadSlot.objects.filter(state=SlotState.PLANNED)
    assert planned and {s.starts_at.astimezone(BERLIN).hour for s in planned} == {19}
    schedules.run(_local(2026, 10, 24, 19, 0))
    schedules.run(_local(2026, 10, 24, 20, 0))  # the new slot hands its meter over
    assert _sent("disconnect") == sorted(m.pk for m in meters) and _sent("connect") == []
    assert schedules.run(_local(2026, 10, 24, 22, 0))["restored"] == 1
    assert _sent("connect") == sorted(m.pk for m in meters)  # all it switched, restored
    schedules.cancel_schedule(schedule, acting_user=world.operator_a)
    with pytest.raises(Conflict):
        schedules.update_schedule(schedule, edited, acting_user=world.operator_a)
