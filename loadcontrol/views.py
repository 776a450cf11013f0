"""Pages of load control: the command list, and the meter page's connect / disconnect."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView

from accounts.mixins import ScopedViewMixin
from collection.commands.kinds import BadCommand
from collection.models import CommandKind, CommandState, MeterCommand
from meters.models import Meter

from . import actions, schedules, selection
from .forms import ScheduleForm
from .models import BulkCommand, BulkState, LoadSchedule, ScheduleState

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
            "bulk": get.get("bulk", "") if get.get("bulk", "").isdigit() else "",
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
        if chosen["bulk"]:
            commands = commands.filter(origin=f"bulk:{chosen['bulk']}")
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


# ------------------------------------------------------------------ bulk commands


def bulk_panel_context(request, page) -> dict | None:
    """The meter list's "Switch supply" for roles that may switch (none: no panel)."""
    if not actions.may_command(request.user, "disconnect"):
        return None
    return {"bulk_kinds": [(k, label) for k, label in CommandKind.choices if k in BULK_KINDS]}


BULK_KINDS = ("disconnect", "connect", "ready_for_reconnection", "relay_read")


def _confirm_bulk(request, chosen, data: dict, note: str = ""):
    return render(
        request,
        "loadcontrol/bulk_confirm.html",
        {
            **data,
            **chosen.preview(),
            "kind_label": dict(CommandKind.choices).get(data["kind"], data["kind"]),
            "note": note,
        },
    )


def _chosen_on_meter_list(request, data: dict):
    return selection.from_meter_list(
        request.user, filters=data["filters"], all_filtered=data["all_filtered"], ids=data["ids"]
    )


def _bulk_fields(request) -> dict:
    post = request.POST
    return {
        "kind": post.get("kind", ""),
        "reason": post.get("reason", "").strip()[:2000],
        "filters": post.get("filters", "")[:2000],
        "all_filtered": bool(post.get("all_filtered")),
        "ids": [int(v) for v in post.getlist("meter") if v.isdigit()][: selection.MAX_LISTED],
    }


def bulk_from_meter_list(request, meter_selection):
    """POST "bulk_command" from the meter list: show what it would do (the count) first."""
    data = _bulk_fields(request)
    if data["kind"] not in BULK_KINDS:
        messages.error(request, "Choose what to do with the supply.")
        return meter_selection.back()
    if not actions.may_command(request.user, data["kind"]):
        raise PermissionDenied("You may not send this command.")
    try:
        chosen = _chosen_on_meter_list(request, data)
    except BadCommand as exc:
        messages.error(request, f"Nothing sent: {exc}.")
        return meter_selection.back()
    return _confirm_bulk(request, chosen, data)


@login_required
@require_POST
def bulk_new(request):
    """The confirmed bulk command: the count must still be what was shown."""
    data = _bulk_fields(request)
    if not actions.may_command(request.user, data["kind"] or None):
        raise PermissionDenied("You may not send this command.")
    try:
        chosen = _chosen_on_meter_list(request, data)
        count = chosen.count()
        if request.POST.get("count") != str(count):
            return _confirm_bulk(request, chosen, data, note="The selection changed meanwhile.")
        bulk = actions.request_bulk(
            chosen.for_request(),
            data["kind"],
            acting_user=request.user,
            reason=data["reason"],
            target=chosen.target,
        )
    except actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except BadCommand as exc:
        messages.error(request, f"Nothing sent: {exc}.")
        return redirect(f"{reverse('meters:meter-list')}?{data['filters']}")
    if bulk.state == BulkState.PENDING:
        messages.success(request, f"Waiting for a second person's approval ({count} meters).")
    else:
        messages.success(request, f"{bulk.get_kind_display()} queued for {count} meters.")
    return redirect("loadcontrol:bulk-detail", pk=bulk.pk)


class BulkListView(ScopedViewMixin, ListView):
    """Bulk commands in scope, newest first, by state; those waiting for approval first."""

    model = BulkCommand
    paginate_by = 50
    template_name = "loadcontrol/bulk_list.html"

    def chosen_state(self) -> str:
        state = self.request.GET.get("state", "")
        return state if state in BulkState.values else ""

    def get_queryset(self):
        bulks = self.scoped_queryset().select_related("requested_by", "decided_by")
        if self.chosen_state():
            bulks = bulks.filter(state=self.chosen_state())
        return bulks

    def get_context_data(self, **kwargs):
        state = self.chosen_state()
        return {
            **super().get_context_data(**kwargs),
            "states": BulkState.choices,
            "chosen_state": state,
            "query": f"state={state}" if state else "",
        }


class BulkDetailView(ScopedViewMixin, DetailView):
    """One bulk command: what, for which meters, who decided, live progress, the buttons."""

    model = BulkCommand
    template_name = "loadcontrol/bulk_detail.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related("requested_by", "decided_by", "cancelled_by")

    def get_context_data(self, **kwargs):
        bulk = self.object
        user = self.request.user
        may = actions.may_command(user, bulk.kind)
        progress = actions.bulk_progress(bulk)
        return {
            **super().get_context_data(**kwargs),
            "progress": progress,
            "counts": [(label, progress["counts"][v], v) for v, label in CommandState.choices],
            "may_decide": may
            and bulk.state == BulkState.PENDING
            and user.pk != bulk.requested_by_id,
            "may_cancel": may and bulk.state in (BulkState.PENDING, BulkState.APPROVED),
            "live": bulk.state == BulkState.PENDING
            or (bulk.state == BulkState.APPROVED and progress["done"] < progress["total"]),
        }


@login_required
@require_POST
def bulk_decide(request, pk: int):
    """Approve, reject or cancel a bulk command (the buttons of its page)."""
    bulk = get_object_or_404(BulkCommand.objects.restrict(request.user, "view"), pk=pk)
    decision = request.POST.get("decision", "")
    reason = request.POST.get("reason", "").strip()[:2000]
    decide = {
        "approve": lambda: actions.approve_bulk(bulk, acting_user=request.user),
        "reject": lambda: actions.reject_bulk(bulk, acting_user=request.user, reason=reason),
        "cancel": lambda: actions.cancel_bulk(bulk, acting_user=request.user, reason=reason),
    }.get(decision)
    if decide is None:
        messages.error(request, "Choose approve, reject or cancel.")
        return redirect("loadcontrol:bulk-detail", pk=pk)
    try:
        decide()
    except actions.Conflict as exc:
        messages.error(request, str(exc))
        return redirect("loadcontrol:bulk-detail", pk=pk)
    except actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(
        request, {"approve": "Approved: queued.", "reject": "Rejected."}.get(decision, "Cancelled.")
    )
    return redirect("loadcontrol:bulk-detail", pk=pk)


# ------------------------------------------------------------------ load schedules


class ScheduleListView(ScopedViewMixin, ListView):
    """Load-control schedules in scope, newest first."""

    model = LoadSchedule
    paginate_by = 50
    template_name = "loadcontrol/schedule_list.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related("created_by")

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "may_schedule": actions.may_command(self.request.user, "disconnect"),
            "time_zone": settings.TIME_ZONE,
        }


class ScheduleDetailView(ScopedViewMixin, DetailView):
    """One schedule: its rule, its slots (planned two days ahead), approve / cancel."""

    model = LoadSchedule
    template_name = "loadcontrol/schedule_detail.html"

    def get_context_data(self, **kwargs):
        schedule, user = self.object, self.request.user
        may = actions.may_command(user, "disconnect")
        return {
            **super().get_context_data(**kwargs),
            "slots": list(schedule.slots.order_by("-starts_at")[:50]),
            "time_zone": settings.TIME_ZONE,
            "may_approve": may
            and schedule.state == ScheduleState.PENDING
            and user.pk != schedule.created_by_id,
            "may_cancel": may and schedule.state != ScheduleState.CANCELLED,
        }


def _schedule_of(request, form) -> LoadSchedule:
    """The unsaved schedule the form describes (BadCommand when its meters do not fit)."""
    data = form.cleaned_data
    if data.get("node"):
        chosen = selection.choose(request.user, node=data["node"])
    elif (data.get("tariff") or "").strip():
        chosen = selection.choose(request.user, tariff=data["tariff"])
    else:
        serials = form.serial_list()
        found = dict(
            Meter.objects.restrict(request.user, "view")
            .filter(serial__in=serials)
            .values_list("serial", "pk")
        )
        missing = [s for s in serials if s not in found]
        if missing:
            raise BadCommand(f"no such meter: {', '.join(missing[:10])}", field="meters")
        chosen = selection.choose(request.user, meters=list(found.values()))
    return schedules.unsaved(chosen, data)


def _initial(schedule: LoadSchedule) -> dict:
    """The form's fields for an existing schedule: its meters chosen as they were (a grid
    node, a customer group), else by their serials."""
    target = schedule.target or {}
    way = {}
    if target.get("by") == "node":
        way = {"node": target.get("node")}
    elif target.get("by") == "tariff":
        way = {"tariff": target.get("tariff")}
    else:
        serials = Meter.objects.filter(pk__in=schedule.meter_ids).values_list("serial", flat=True)
        way = {"serials": "\n".join(sorted(serials))}
    fields = ("name", "starts_on", "at", "duration_minutes", "recurrence", "weekdays", "until")
    return {**{f: getattr(schedule, f) for f in fields}, "reason": schedule.reason, **way}


def _schedule_form(request, existing: LoadSchedule | None = None):
    """The schedule form, new or editing `existing`: "Preview" shows its slots and overlaps
    (again, for an edit), "Save" (from the preview) saves it."""
    if not actions.may_command(request.user, "disconnect"):
        raise PermissionDenied("You may not switch supply.")
    if request.method == "POST":
        form = ScheduleForm(request.POST)
    else:
        form = ScheduleForm(initial=_initial(existing) if existing else None)
    context = {"form": form, "time_zone": settings.TIME_ZONE, "existing": existing}
    if request.method == "POST" and form.is_valid():
        try:
            schedule = _schedule_of(request, form)
            if existing is not None:
                schedule.pk = existing.pk  # its own slots are not an overlap
            shown = schedules.preview(schedule)
            if request.POST.get("save") == "yes":
                if existing is None:
                    schedule = schedules.create_schedule(schedule, acting_user=request.user)
                    messages.success(request, f"Schedule “{schedule.name}” saved.")
                else:
                    schedule = schedules.update_schedule(
                        existing, schedule, acting_user=request.user
                    )
                    messages.success(request, f"Schedule “{schedule.name}” changed.")
                return redirect("loadcontrol:schedule-detail", pk=schedule.pk)
            context.update(preview=shown, schedule=schedule)
        except actions.NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        except (BadCommand, actions.Conflict) as exc:
            form.add_error(None, str(exc))
    return render(request, "loadcontrol/schedule_form.html", context)


@login_required
def schedule_new(request):
    """A new schedule."""
    return _schedule_form(request)


@login_required
def schedule_edit(request, pk: int):
    """Change a schedule that is not cancelled (its overlaps shown again before saving)."""
    existing = get_object_or_404(LoadSchedule.objects.restrict(request.user, "change"), pk=pk)
    if existing.state == ScheduleState.CANCELLED:
        messages.error(request, "The schedule is cancelled: make a new one.")
        return redirect("loadcontrol:schedule-detail", pk=pk)
    return _schedule_form(request, existing)


@login_required
@require_POST
def schedule_decide(request, pk: int):
    """Approve or cancel a schedule (the buttons of its page)."""
    schedule = get_object_or_404(LoadSchedule.objects.restrict(request.user, "view"), pk=pk)
    decide = {"approve": schedules.approve_schedule, "cancel": schedules.cancel_schedule}.get(
        request.POST.get("decision", "")
    )
    if decide is None:
        messages.error(request, "Choose approve or cancel.")
        return redirect("loadcontrol:schedule-detail", pk=pk)
    try:
        decide(schedule, acting_user=request.user)
    except actions.Conflict as exc:
        messages.error(request, str(exc))
    except actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    return redirect("loadcontrol:schedule-detail", pk=pk)
