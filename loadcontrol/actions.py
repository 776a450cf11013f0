"""Load control: who may switch a meter's supply and how a request becomes a command.

loadcontrol decides (roles, reasons, priority); collection's command queue executes
(`collection.commands.actions`). Every door (API, meter page) comes through here.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.scoping import org_within_scope
from collection.commands import actions as commands
from collection.commands.kinds import (
    CONFIG_KINDS,
    EXPECTED_RELAY,
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    BadCommand,
    clean_kind,
)
from collection.models import MeterCommand
from collection.progress import commands_snapshot, publish_commands
from meters.models import Meter

from .models import BulkCommand, BulkState

CHANGE_CONFIGURATION = "meters.change_desiredconfiguration"
EXPIRY = timedelta(hours=1)
EMERGENCY_EXPIRY = timedelta(minutes=15)


class NotAllowed(Exception):
    """The user may see the meter but not command it this way (403)."""


class Conflict(NotAllowed):
    """Not in the state it would need: decided, cancelled or finished already (409)."""


def may_command(user, kind: str | None = None) -> bool:
    """Whether `user` may queue a command of `kind` (any kind when None) at all."""
    if not user.has_perm("collection.add_metercommand"):
        return False
    if kind is not None and kind in EXPECTED_RELAY:
        return user.has_perm("collection.switch_relay")
    if kind is not None and kind in CONFIG_KINDS:  # reconfiguring meters: engineers
        return user.has_perm(CHANGE_CONFIGURATION)
    return True


def request_command(
    meter: Meter,
    kind: str,
    *,
    acting_user,
    reason: str = "",
    emergency: bool = False,
    parameters: dict | None = None,
) -> MeterCommand:
    """Queue `kind` for `meter` (already visible to the user) on the user's behalf.

    NotAllowed: the role may not, or the meter is outside the user's write scope.
    BadCommand: the kind, parameters or reason do not fit.
    """
    kind, reason = _check(acting_user, meter.organisation, kind, reason)
    if emergency and kind != "disconnect":
        raise BadCommand("only a disconnect can be an emergency", field="emergency")
    return commands.queue_command(
        meter,
        kind,
        acting_user=acting_user,
        reason=reason,
        parameters=parameters,
        priority=PRIORITY_EMERGENCY if emergency else PRIORITY_NORMAL,
        expires_in=EMERGENCY_EXPIRY if emergency else EXPIRY,
    )


def _check(user, organisation, kind: str, reason: str) -> tuple[str, str]:
    """The kind and reason, cleaned, when `user` may command meters of `organisation` so."""
    kind = clean_kind(kind)
    if not may_command(user, kind):
        raise NotAllowed("Your role may not send this command.")
    if not org_within_scope(user, organisation, "add"):
        raise NotAllowed("You may not command meters of this organisation.")
    reason = (reason or "").strip()
    if kind in EXPECTED_RELAY and not reason:
        raise BadCommand("say why the supply is switched", field="reason")
    return kind, reason


def request_bulk(
    meters, kind: str, *, acting_user, reason: str = "", target: dict | None = None
) -> BulkCommand:
    """One command for many meters (already visible to the user, one organisation), audited.

    Up to `AMI_COMMAND_APPROVAL_THRESHOLD` meters it is queued at once (batch tasks); above,
    it waits for a second person (`approve_bulk`). `target` says how the meters were chosen
    (selection.Selection.target). NotAllowed / BadCommand as `request_command`.
    """
    meters = list(meters)
    if not meters:
        raise BadCommand("the selection has no meters", field="meters")
    organisations = {m.organisation_id for m in meters}
    if len(organisations) != 1:
        raise BadCommand("a bulk command is for meters of one organisation", field="meters")
    kind, reason = _check(acting_user, meters[0].organisation, kind, reason)
    with transaction.atomic():
        bulk = BulkCommand.objects.create(
            organisation_id=organisations.pop(),
            kind=kind,
            meter_ids=sorted(m.pk for m in meters),
            reason=reason,
            requested_by=acting_user,
            target=target or {"by": "meters", "label": f"{len(meters)} chosen meters"},
        )
        audit.record(
            "request_bulk_command",
            user=acting_user,
            obj=bulk,
            changes={"kind": kind, "meters": len(meters)},
            detail=reason,
        )
        if len(meters) <= settings.AMI_COMMAND_APPROVAL_THRESHOLD:
            _queue_bulk(bulk, decided_by=None)
    return bulk


def approve_bulk(bulk: BulkCommand, *, acting_user) -> BulkCommand:
    """A second person (not the requester, allowed to send the command) approves: queued."""
    with transaction.atomic():
        bulk = BulkCommand.objects.select_for_update().get(pk=bulk.pk)
        _check_decider(bulk, acting_user)
        _check(acting_user, bulk.organisation, bulk.kind, bulk.reason)
        audit.record("approve_bulk_command", user=acting_user, obj=bulk)
        _queue_bulk(bulk, decided_by=acting_user)
    return bulk


def reject_bulk(bulk: BulkCommand, *, acting_user, reason: str = "") -> BulkCommand:
    """A second person turns the bulk command down: nothing is queued."""
    with transaction.atomic():
        bulk = BulkCommand.objects.select_for_update().get(pk=bulk.pk)
        _check_decider(bulk, acting_user)
        bulk.state, bulk.decided_by, bulk.decided_at = (
            BulkState.REJECTED,
            acting_user,
            timezone.now(),
        )
        bulk.save(update_fields=["state", "decided_by", "decided_at"])
        audit.record("reject_bulk_command", user=acting_user, obj=bulk, detail=reason)
        publish_commands(bulk.origin)
    return bulk


def _check_decider(bulk: BulkCommand, user) -> None:
    if bulk.state != BulkState.PENDING:
        raise Conflict(f"The bulk command is {bulk.get_state_display().lower()} already.")
    if user is None or user.pk == bulk.requested_by_id:
        raise NotAllowed("A second person approves a bulk command, not its requester.")
    if not may_command(user, bulk.kind):
        raise NotAllowed("Your role may not send this command.")


def _queue_bulk(bulk: BulkCommand, *, decided_by) -> None:
    meters = list(
        Meter.objects.filter(organisation=bulk.organisation_id, pk__in=bulk.meter_ids)
        .select_related("organisation")
        .order_by("pk")
    )
    commands.queue_commands(
        meters,
        bulk.kind,
        acting_user=bulk.requested_by,
        reason=bulk.reason,
        priority=PRIORITY_NORMAL,
        expires_in=EXPIRY,
        origin=bulk.origin,
    )
    bulk.state, bulk.decided_by, bulk.decided_at = BulkState.APPROVED, decided_by, timezone.now()
    bulk.save(update_fields=["state", "decided_by", "decided_at"])


def cancel_bulk(bulk: BulkCommand, *, acting_user, reason: str = "") -> int:
    """Stop a bulk command: a pending one is never queued; of an approved one, every command
    still queued is cancelled (those already sent run to their read-back). Anyone who may
    send it may stop it. Returns the commands cancelled; NotAllowed when nothing is left."""
    with transaction.atomic():
        bulk = BulkCommand.objects.select_for_update().get(pk=bulk.pk)
        _check(acting_user, bulk.organisation, bulk.kind, bulk.reason)
        if bulk.state not in (BulkState.PENDING, BulkState.APPROVED):
            raise Conflict(f"The bulk command is {bulk.get_state_display().lower()} already.")
        cancelled = 0
        if bulk.state == BulkState.APPROVED:
            cancelled = commands.cancel_origin(bulk.origin, acting_user=acting_user, reason=reason)
            if not cancelled:
                raise Conflict("Every command is sent or finished: nothing left to cancel.")
        bulk.state, bulk.cancelled_by, bulk.cancelled_at = (
            BulkState.CANCELLED,
            acting_user,
            timezone.now(),
        )
        bulk.save(update_fields=["state", "cancelled_by", "cancelled_at"])
        audit.record(
            "cancel_bulk_command",
            user=acting_user,
            obj=bulk,
            changes={"cancelled": cancelled},
            detail=reason,
        )
        publish_commands(bulk.origin)
    return cancelled


def bulk_progress(bulk: BulkCommand) -> dict:
    """The bulk command's state and its commands' counts (what its page and socket show)."""
    progress = commands_snapshot(bulk.origin)
    return {
        "id": bulk.pk,
        "state": bulk.state,
        "state_label": bulk.get_state_display(),
        "size": bulk.size,
        **progress,
    }


def cancel(command: MeterCommand, *, acting_user, reason: str = "") -> MeterCommand:
    """Cancel a queued command (commands.NotCancellable once it is sent or finished)."""
    return commands.cancel_command(command, acting_user=acting_user, reason=reason)
