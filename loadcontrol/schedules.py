"""Scheduled load control: make a schedule, see what it overlaps before saving, and the beat
task that switches each slot off once and restores it once.

Exactly once per slot: a slot is a row (unique per schedule and start); it goes planned ->
off (disconnects queued) and off -> restored (connects queued), each in one transaction with
the row locked (`SKIP LOCKED`: a second beat run finds it taken or done). A slot whose end
passed before the scheduler saw it is `missed`: nothing is sent for the past.

Overlaps resolve by union (recurrence.py): a meter stays off while any slot holds it and is
restored by the last slot holding it to end. A meter already off for another reason when a
slot starts (unpaid, a bulk disconnect: its relay read open and no slot holds it) is left
alone and is not reconnected at the end.
"""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from collection.commands import actions as commands
from collection.commands.kinds import BadCommand
from meters.choices import RELAY_OPEN
from meters.models import CommStatus, Meter

from . import recurrence
from .actions import Conflict, NotAllowed, _check, may_command
from .models import LoadSchedule, LoadSlot, ScheduleState, SlotState

HORIZON = timedelta(days=2)  # slots are planned this far ahead
PREVIEW = timedelta(days=14)  # overlaps are shown this far ahead


def zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def rule_of(schedule: LoadSchedule) -> recurrence.Rule:
    return recurrence.Rule(
        starts_on=schedule.starts_on,
        at=schedule.at,
        duration=timedelta(minutes=schedule.duration_minutes),
        recurrence=schedule.recurrence,
        weekdays=tuple(schedule.weekdays or ()),
        until=schedule.until,
    )


def unsaved(chosen, data: dict) -> LoadSchedule:
    """A schedule (not saved) for the meters `chosen` (selection.Selection) and the cleaned
    fields of the page's form or the API's request; BadCommand unless one organisation's."""
    meters = list(chosen.meters.values_list("pk", "organisation_id"))
    if not meters:
        raise BadCommand("the selection has no meters", field="meters")
    organisations = {org for _pk, org in meters}
    if len(organisations) > 1:
        raise BadCommand("a schedule is for meters of one organisation", field="meters")
    return LoadSchedule(
        organisation_id=organisations.pop(),
        name=data["name"],
        meter_ids=sorted(pk for pk, _org in meters),
        target=chosen.target,
        starts_on=data["starts_on"],
        at=data["at"],
        duration_minutes=data["duration_minutes"],
        recurrence=data["recurrence"],
        weekdays=sorted(set(data["weekdays"])),
        until=data["until"],
        reason=data["reason"].strip(),
    )


def preview(schedule: LoadSchedule, *, now=None) -> dict:
    """What saving `schedule` (unsaved or saved) would do in its next two weeks (from now or
    its first day, whichever is later): its slots and,
    per other active schedule sharing meters, the spans both are on (union: off from the
    first start to the last end, restored when the last ends)."""
    now = now or timezone.now()
    try:
        recurrence.check(rule_of(schedule))
    except recurrence.BadRule as exc:
        raise BadCommand(str(exc), field=exc.field) from None
    since = max(now, recurrence.local_start(schedule.starts_on, time(0), zone()))
    mine = recurrence.slots(rule_of(schedule), zone(), since, since + PREVIEW)
    meters = set(schedule.meter_ids)
    others = (
        LoadSchedule.objects.filter(organisation_id=schedule.organisation_id)
        .exclude(state=ScheduleState.CANCELLED)
        .exclude(pk=schedule.pk)
    )
    overlaps = []
    for other in others:
        shared = meters & set(other.meter_ids)
        if not shared:
            continue
        theirs = recurrence.slots(rule_of(other), zone(), since, since + PREVIEW)
        spans = recurrence.overlaps(mine, theirs)
        if spans:
            overlaps.append(
                {"schedule": other.pk, "name": other.name, "meters": len(shared), "spans": spans}
            )
    return {"slots": mine, "overlaps": overlaps, "size": len(meters)}


def create_schedule(schedule: LoadSchedule, *, acting_user) -> LoadSchedule:
    """Save a new schedule (fields set, meters chosen in the user's scope), audited; above the
    approval threshold it waits for a second person. BadCommand / NotAllowed."""
    if not schedule.meter_ids:
        raise BadCommand("the selection has no meters", field="meters")
    _check(acting_user, schedule.organisation, "disconnect", schedule.reason)
    preview(schedule)  # checks the rule
    schedule.created_by = acting_user
    schedule.state = (
        ScheduleState.PENDING
        if schedule.size > settings.AMI_COMMAND_APPROVAL_THRESHOLD
        else ScheduleState.ACTIVE
    )
    with transaction.atomic():
        schedule.save()
        audit.record(
            "create_load_schedule",
            user=acting_user,
            obj=schedule,
            changes={"meters": schedule.size, "state": schedule.state},
            detail=schedule.reason,
        )
    return schedule


EDITABLE = (
    "name",
    "meter_ids",
    "target",
    "starts_on",
    "at",
    "duration_minutes",
    "recurrence",
    "weekdays",
    "until",
    "reason",
)


def update_schedule(schedule: LoadSchedule, edited: LoadSchedule, *, acting_user) -> LoadSchedule:
    """Change a schedule (not cancelled) to what `edited` (unsaved, `unsaved()`) says,
    audited with what changed. Its planned slots are dropped and planned again by the next
    tick; a slot that is on now finishes as it was planned (its meters restored at its end).
    Above the approval threshold it waits for a second person again. BadCommand /
    NotAllowed / Conflict."""
    with transaction.atomic():
        current = LoadSchedule.objects.select_for_update().get(pk=schedule.pk)
        if current.state == ScheduleState.CANCELLED:
            raise Conflict("The schedule is cancelled: make a new one.")
        if edited.organisation_id != current.organisation_id:
            raise BadCommand("a schedule stays with its organisation's meters", field="meters")
        if not edited.meter_ids:
            raise BadCommand("the selection has no meters", field="meters")
        _check(acting_user, current.organisation, "disconnect", edited.reason)
        edited.pk = current.pk
        preview(edited)  # checks the rule
        changes = {}
        for name in EDITABLE:
            before, after = getattr(current, name), getattr(edited, name)
            if before != after:
                changes[name] = [
                    len(before) if name == "meter_ids" else str(before),
                    len(after) if name == "meter_ids" else str(after),
                ]
                setattr(current, name, after)
        if not changes:
            return current
        pending = current.size > settings.AMI_COMMAND_APPROVAL_THRESHOLD
        current.state = ScheduleState.PENDING if pending else ScheduleState.ACTIVE
        current.approved_by = None if pending else current.approved_by
        current.save()
        dropped, _ = current.slots.filter(state=SlotState.PLANNED).delete()
        audit.record(
            "update_load_schedule",
            user=acting_user,
            obj=current,
            changes={**changes, "state": current.state, "planned_slots_dropped": dropped},
            detail=current.reason,
        )
    return current


def approve_schedule(schedule: LoadSchedule, *, acting_user) -> LoadSchedule:
    with transaction.atomic():
        schedule = LoadSchedule.objects.select_for_update().get(pk=schedule.pk)
        if schedule.state != ScheduleState.PENDING:
            raise Conflict(f"The schedule is {schedule.get_state_display().lower()} already.")
        if acting_user.pk == schedule.created_by_id:
            raise NotAllowed("A second person approves a schedule, not its author.")
        _check(acting_user, schedule.organisation, "disconnect", schedule.reason)
        schedule.state, schedule.approved_by = ScheduleState.ACTIVE, acting_user
        schedule.save(update_fields=["state", "approved_by"])
        audit.record("approve_load_schedule", user=acting_user, obj=schedule)
    return schedule


def cancel_schedule(schedule: LoadSchedule, *, acting_user, now=None) -> LoadSchedule:
    """No more slots; a slot that is on now ends now (its meters restored, union kept)."""
    now = now or timezone.now()
    with transaction.atomic():
        schedule = LoadSchedule.objects.select_for_update().get(pk=schedule.pk)
        if schedule.state == ScheduleState.CANCELLED:
            raise Conflict("The schedule is cancelled already.")
        if not may_command(acting_user, "disconnect"):
            raise NotAllowed("Your role may not send this command.")
        _check(acting_user, schedule.organisation, "disconnect", schedule.reason)
        schedule.state = ScheduleState.CANCELLED
        schedule.save(update_fields=["state"])
        schedule.slots.filter(state=SlotState.PLANNED).update(state=SlotState.CANCELLED)
        for slot in schedule.slots.select_for_update().filter(state=SlotState.OFF):
            _restore(slot, now)
        audit.record("cancel_load_schedule", user=acting_user, obj=schedule)
    return schedule


# ------------------------------------------------------------------ the beat task


def plan(now) -> int:
    """Rows for the slots of active schedules that start within `HORIZON` (idempotent)."""
    rows = []
    for schedule in LoadSchedule.objects.filter(state=ScheduleState.ACTIVE):
        for start, end in recurrence.slots(rule_of(schedule), zone(), now, now + HORIZON):
            rows.append(
                LoadSlot(
                    schedule=schedule,
                    organisation_id=schedule.organisation_id,
                    starts_at=start,
                    ends_at=end,
                )
            )
    LoadSlot.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def run(now=None) -> dict:
    """One scheduler tick: plan, switch off the slots due, restore the slots ended."""
    now = now or timezone.now()
    plan(now)
    done = {"off": 0, "restored": 0, "missed": 0}
    due = LoadSlot.objects.filter(
        state=SlotState.PLANNED, starts_at__lte=now, schedule__state=ScheduleState.ACTIVE
    )
    for slot_id in due.order_by("starts_at").values_list("pk", flat=True):
        done[_start(slot_id, now)] += 1
    ended = LoadSlot.objects.filter(state=SlotState.OFF, ends_at__lte=now)
    for slot_id in ended.order_by("ends_at").values_list("pk", flat=True):
        with transaction.atomic():
            slot = _locked(slot_id, SlotState.OFF)
            if slot is not None:
                _restore(slot, now)
                done["restored"] += 1
    return done


def _locked(slot_id: int, state: str) -> LoadSlot | None:
    return (
        LoadSlot.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("schedule", "schedule__created_by")
        .filter(pk=slot_id, state=state)
        .first()
    )


def _held(organisation_id: int, now, *, but: int, continuing: bool) -> set[int]:
    """Meters other slots hold off: every slot that is off (`continuing`: only those that
    have not ended, so go on holding after `now`)."""
    held: set[int] = set()
    slots = LoadSlot.objects.filter(organisation_id=organisation_id, state=SlotState.OFF)
    if continuing:
        slots = slots.filter(ends_at__gt=now)
    slots = slots.exclude(pk=but)
    for switched in slots.values_list("switched", flat=True):
        held.update(switched)
    return held


def _start(slot_id: int, now) -> str:
    with transaction.atomic():
        slot = _locked(slot_id, SlotState.PLANNED)
        if slot is None:
            return "off"  # another tick has it (or had it)
        if slot.ends_at <= now:
            slot.state = SlotState.MISSED
            slot.save(update_fields=["state"])
            return "missed"
        schedule = slot.schedule
        # Starting runs before restoring in a tick: a slot ending now still holds its meters,
        # so a slot starting as it ends takes them over instead of leaving them alone.
        held = _held(slot.organisation_id, now, but=slot.pk, continuing=False)
        open_now = set(
            CommStatus.objects.filter(
                meter_id__in=schedule.meter_ids, relay_state__in=RELAY_OPEN
            ).values_list("meter_id", flat=True)
        )
        alone = sorted(open_now - held)
        switched = sorted(set(schedule.meter_ids) - set(alone))
        meters = _meters(schedule, switched)
        to_send = [m for m in meters if m.pk not in held]  # held ones are off already
        if to_send:
            commands.queue_commands(
                to_send,
                "disconnect",
                acting_user=schedule.created_by,
                reason=f"Schedule “{schedule.name}”: {schedule.reason}",
                expires_in=min(slot.ends_at - now, timedelta(hours=1)),
                origin=schedule.origin,
            )
        slot.state, slot.started_at = SlotState.OFF, now
        slot.switched, slot.left_alone = [m.pk for m in meters], alone
        slot.save(update_fields=["state", "started_at", "switched", "left_alone"])
        audit.record(
            "load_slot_off",
            obj=schedule,
            organisation=schedule.organisation,
            username="scheduler",
            changes={"slot": slot.pk, "switched": len(to_send), "left_alone": len(alone)},
        )
    return "off"


def _restore(slot: LoadSlot, now) -> None:
    """Reconnect what the slot switched and no other slot holds; the slot is restored."""
    schedule = slot.schedule
    held = _held(slot.organisation_id, now, but=slot.pk, continuing=True)
    back = _meters(schedule, [m for m in slot.switched if m not in held])
    if back:
        commands.queue_commands(
            back,
            "connect",
            acting_user=schedule.created_by,
            reason=f"Schedule “{schedule.name}” ended",
            origin=schedule.origin,
        )
    # What another slot holds is handed over: that slot restores it when it ends.
    handed = [m for m in slot.switched if m in held]
    slot.state, slot.restored_at = SlotState.RESTORED, now
    slot.save(update_fields=["state", "restored_at"])
    audit.record(
        "load_slot_restored",
        obj=schedule,
        organisation=schedule.organisation,
        username="scheduler",
        changes={"slot": slot.pk, "restored": len(back), "handed_over": len(handed)},
    )


def _meters(schedule: LoadSchedule, ids) -> list[Meter]:
    return list(
        Meter.objects.filter(organisation_id=schedule.organisation_id, pk__in=list(ids))
        .select_related("organisation")
        .order_by("pk")
    )
