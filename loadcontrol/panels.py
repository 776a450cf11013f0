"""Load control's panel on the meter page (meters/panels.py, settings' `AMI_PANELS`): the
relay as last seen, connect / disconnect / read buttons, and the meter's latest commands."""

from __future__ import annotations

from collection.models import MeterCommand
from meters.panels import Panel

from . import actions, views

COMMANDS_SHOWN = 10
# What the panel shows of a command (every column of a command and its user was most of
# the panel's time).
COMMAND_FIELDS = ("created_at", "kind", "state", "error", "reason", "requested_by__username")


def relay_context(request, page) -> dict | None:
    user = request.user
    if not user.has_perm("collection.view_metercommand"):
        return None
    commands = (
        MeterCommand.objects.restrict(user, "view")
        .filter(meter_id=page["meter"].pk)
        .select_related("requested_by")
        .only(*COMMAND_FIELDS)[:COMMANDS_SHOWN]
    )
    return {
        "commands": list(commands),
        "may_switch": actions.may_command(user, "disconnect"),
        "may_read_relay": actions.may_command(user, "relay_read"),
    }


relay_control = Panel("loadcontrol/panels/meter_relay.html", relay_context)

switch_supply = Panel(
    "loadcontrol/panels/switch_supply.html",
    views.bulk_panel_context,
    action="bulk_command",
    handle=views.bulk_from_meter_list,
)
