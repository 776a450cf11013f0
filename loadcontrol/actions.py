"""Load control: who may switch a meter's supply and how a request becomes a command.

loadcontrol decides (roles, reasons, priority); collection's command queue executes
(`collection.commands.actions`). Every door (API, meter page) comes through here.
"""

from __future__ import annotations

from datetime import timedelta

from accounts.scoping import org_within_scope
from collection.commands import actions as commands
from collection.commands.kinds import (
    EXPECTED_RELAY,
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    BadCommand,
    clean_kind,
)
from collection.models import MeterCommand
from meters.models import Meter

EXPIRY = timedelta(hours=1)
EMERGENCY_EXPIRY = timedelta(minutes=15)


class NotAllowed(Exception):
    """The user may see the meter but not command it this way (403)."""


def may_command(user, kind: str | None = None) -> bool:
    """Whether `user` may queue a command of `kind` (any kind when None) at all."""
    if not user.has_perm("collection.add_metercommand"):
        return False
    if kind is not None and kind in EXPECTED_RELAY:
        return user.has_perm("collection.switch_relay")
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
    kind = clean_kind(kind)
    if not may_command(acting_user, kind):
        raise NotAllowed("Your role may not send this command.")
    if not org_within_scope(acting_user, meter.organisation, "add"):
        raise NotAllowed("You may not command meters of this organisation.")
    reason = (reason or "").strip()
    if kind in EXPECTED_RELAY and not reason:
        raise BadCommand("say why the supply is switched", field="reason")
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


def cancel(command: MeterCommand, *, acting_user, reason: str = "") -> MeterCommand:
    """Cancel a queued command (commands.NotCancellable once it is sent or finished)."""
    return commands.cancel_command(command, acting_user=acting_user, reason=reason)
