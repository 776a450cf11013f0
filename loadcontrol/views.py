"""Pages of load control: the command list, and the meter page's connect / disconnect."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.generic import ListView

from accounts.mixins import ScopedViewMixin
from collection.commands.kinds import BadCommand
from collection.models import CommandKind, CommandState, MeterCommand
from meters.models import Meter

from . import actions

OPENS_RELAY = ("disconnect", "ready_for_reconnection")  # confirmed before they are sent


class CommandListView(ScopedViewMixin, ListView):
    """Commands in scope, newest first, filtered by state, kind and meter serial."""

    model = MeterCommand
    paginate_by = 50
    template_name = "loadcontrol/command_list.html"

    def filters(self) -> dict:
        get = self.request.GET
        return {
            "state": get.get("state", "") if get.get("state") in CommandState.values else "",
            "kind": get.get("kind", "") if get.get("kind") in CommandKind.values else "",
            "meter": get.get("meter", "").strip()[:64],
        }

    def get_queryset(self):
        chosen = self.filters()
        commands = self.scoped_queryset().select_related("meter", "requested_by")
        if chosen["state"]:
            commands = commands.filter(state=chosen["state"])
        if chosen["kind"]:
            commands = commands.filter(kind=chosen["kind"])
        if chosen["meter"]:
            commands = commands.filter(meter__serial__icontains=chosen["meter"])
        return commands

    def get_context_data(self, **kwargs):
        chosen = self.filters()
        query = "&".join(f"{k}={v}" for k, v in chosen.items() if v)
        return {
            **super().get_context_data(**kwargs),
            "chosen": chosen,
            "query": query,
            "states": CommandState.choices,
            "kinds": CommandKind.choices,
        }


@login_required
@require_POST
def command_meter(request, serial: str):
    """The meter page's relay buttons: what opens the relay asks for confirmation first."""
    meter = get_object_or_404(Meter.objects.restrict(request.user, "view"), serial=serial)
    kind = request.POST.get("kind", "")
    reason = request.POST.get("reason", "")[:2000]
    emergency = request.POST.get("emergency") == "1"
    if not actions.may_command(request.user, kind or None):
        raise PermissionDenied("You may not send this command.")
    if kind in OPENS_RELAY and request.POST.get("confirmed") != "yes":
        return render(
            request,
            "loadcontrol/confirm_disconnect.html",
            {"meter": meter, "reason": reason, "emergency": emergency, "kind": kind},
        )
    try:
        command = actions.request_command(
            meter, kind, acting_user=request.user, reason=reason, emergency=emergency
        )
    except actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except BadCommand as exc:
        messages.error(request, str(exc))
        return redirect("meters:meter-detail", serial=serial)
    messages.success(request, f"{command.get_kind_display()} queued.")
    return redirect("meters:meter-detail", serial=serial)
