"""Configuration management pages: the drift report with bulk re-apply, a meter model's and a
meter's desired configuration, and the meter page's configuration and limits panel.

Every change to a meter goes through `loadcontrol.configuration` (commands through the queue);
sending asks for confirmation on a page of its own first.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts import actions as account_actions
from accounts.scoping import org_within_scope
from meters import configuration as config
from meters.models import DesiredConfiguration, GridNode, Meter, MeterModel
from meters.panels import Panel

from . import configuration, drift
from .actions import NotAllowed
from .config_forms import form_for

PAGE_SIZE = 50
STATE_FILTERS = drift.STATE_FILTERS
MAX_SELECTION = 10_000


def _view_meters(request):
    if not request.user.has_perm("meters.view_desiredconfiguration"):
        account_actions.record_denied(request.user, "page_denied", detail=request.path)
        raise PermissionDenied("You may not see meter configuration.")
    return Meter.objects.restrict(request.user, "view")


def _filters(request, meters):
    return drift.select(
        request.user, meters, request.GET if request.method == "GET" else request.POST
    )


def _query(chosen: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in chosen.items() if v)


@login_required
@require_http_methods(["GET", "POST"])
def drift_report(request):
    """Which meters differ from their desired configuration; re-apply or read them in bulk."""
    chosen, meters = _filters(request, _view_meters(request))
    rows = drift.drift_report(
        meters[:MAX_SELECTION], section=chosen["section"], state=chosen["state"]
    )
    if request.method == "POST":
        return _bulk(request, chosen, rows)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "loadcontrol/configuration_drift.html",
        {
            "page_obj": page,
            "chosen": chosen,
            "query": _query(chosen),
            "sections": [(s, config.LABELS[s]) for s in config.SECTIONS],
            "states": STATE_FILTERS,
            "models": MeterModel.objects.restrict(request.user, "view").order_by(
                "manufacturer", "name"
            ),
            "nodes": GridNode.objects.restrict(request.user, "view")
            .exclude(kind="service_point")
            .order_by("path")[:500],
            "may_configure": configuration.may_configure(request.user),
            "total": len(rows),
        },
    )


def _bulk(request, chosen, rows):
    action = request.POST.get("action", "")
    if action not in ("reapply", "read"):
        raise Http404("unknown action")
    picked = {int(x) for x in request.POST.getlist("pick") if x.isdigit()}
    everything = request.POST.get("all") == "1"
    meters = [m for m, _states in rows if everything or m.pk in picked]
    if not meters:
        messages.error(request, "Tick some meters, or choose every meter the filters match.")
        return redirect(f"{request.path}?{_query(chosen)}")
    if request.POST.get("confirmed") != "yes":
        return render(
            request,
            "loadcontrol/configuration_confirm.html",
            {
                "action": action,
                "meters": meters,
                "chosen": chosen,
                "everything": everything,
                "section_label": config.LABELS.get(chosen["section"], "every managed section"),
            },
        )
    reason = request.POST.get("reason", "")[:2000]
    try:
        if action == "reapply":
            sections = [chosen["section"]] if chosen["section"] else None
            n = configuration.reapply(
                meters, acting_user=request.user, sections=sections, reason=reason
            )
            messages.success(request, f"{n} commands queued for {len(meters)} meters.")
        else:
            n = configuration.read_configuration(meters, acting_user=request.user, reason=reason)
            messages.success(request, f"Configuration read queued for {n} meters.")
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    return redirect(f"{request.path}?{_query(chosen)}")


def _edit(request, target, states_context: dict, template: str, back: str):
    """GET: the target's desired sections as forms; POST: save or clear one section."""
    may = configuration.may_configure(request.user) and org_within_scope(
        request.user, target.organisation, "change"
    )
    own = {row.section: row for row in _own_rows(target)}
    bound = None
    if request.method == "POST":
        if not may:
            raise PermissionDenied("Your role may not change meter configuration.")
        section = request.POST.get("section", "")
        if section not in config.SECTIONS:
            raise Http404("unknown section")
        try:
            if request.POST.get("op") == "clear":
                configuration.clear_desired(target, section, acting_user=request.user)
                messages.success(request, f"{config.LABELS[section]} is no longer managed here.")
                return redirect(back)
            form = form_for(section, data=request.POST)
            if form.is_valid():
                configuration.set_desired(target, section, form.value, acting_user=request.user)
                messages.success(request, f"{config.LABELS[section]} saved (not sent yet).")
                return redirect(back)
            bound = (section, form)
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
    forms_ = []
    states = {s.section: s for s in states_context.get("states", [])}
    for section in config.SECTIONS:
        row = own.get(section)
        form = (
            bound[1]
            if bound and bound[0] == section
            else form_for(section, row.value if row else None)
        )
        forms_.append(
            {
                "section": section,
                "label": config.LABELS[section],
                "enforced_by": config.ENFORCED_BY[section],
                "form": form,
                "row": row,
                "state": states.get(section),  # a meter's page: desired against actual
            }
        )
    return render(request, template, {**states_context, "sections": forms_, "may_configure": may})


def _own_rows(target) -> list[DesiredConfiguration]:
    if isinstance(target, Meter):
        return list(DesiredConfiguration.objects.filter(meter=target))
    return list(DesiredConfiguration.objects.filter(meter_model=target, meter__isnull=True))


@login_required
@require_http_methods(["GET", "POST"])
def model_configuration(request, pk: int):
    """What every meter of one model should hold."""
    _view_meters(request)
    model = get_object_or_404(MeterModel.objects.restrict(request.user, "view"), pk=pk)
    meters = Meter.objects.restrict(request.user, "view").filter(meter_model=model)
    counts = {}
    for _meter, states in drift.drift_report(meters[:MAX_SELECTION]):
        for s in states:
            if s.state:
                counts.setdefault(s.section, {}).setdefault(s.state, 0)
                counts[s.section][s.state] += 1
    return _edit(
        request,
        model,
        {"model": model, "counts": counts, "state_labels": drift.STATE_LABELS},
        "loadcontrol/configuration_model.html",
        request.path,
    )


@login_required
@require_http_methods(["GET", "POST"])
def meter_configuration(request, serial: str):
    """One meter: its desired (own or its model's) against what it holds; send a section now."""
    _view_meters(request)
    meter = get_object_or_404(Meter.objects.restrict(request.user, "view"), serial=serial)
    if request.method == "POST" and request.POST.get("op") in ("apply", "read"):
        return _send(request, meter)
    states = drift.states_of([meter])[meter.pk]
    return _edit(
        request,
        meter,
        {"meter": meter, "states": states},
        "loadcontrol/configuration_meter.html",
        request.path,
    )


def _send(request, meter):
    op, section = request.POST["op"], request.POST.get("section", "")
    if op == "apply" and section not in config.SECTIONS:
        raise Http404("unknown section")
    if request.POST.get("confirmed") != "yes":
        return render(
            request,
            "loadcontrol/configuration_confirm.html",
            {
                "action": op,
                "meters": [meter],
                "section": section,
                "section_label": config.LABELS.get(section, ""),
            },
        )
    reason = request.POST.get("reason", "")[:2000]
    try:
        if op == "read":
            configuration.read_configuration([meter], acting_user=request.user, reason=reason)
            messages.success(request, "Configuration read queued.")
        else:
            command = configuration.apply_section(
                meter, section, acting_user=request.user, reason=reason
            )
            messages.success(request, f"{command.get_kind_display()} queued.")
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("loadcontrol:configuration-meter", serial=meter.serial)


def panel_context(request, page) -> dict | None:
    """The meter page's configuration and limits summary."""
    if not request.user.has_perm("meters.view_desiredconfiguration"):
        return None
    meter = page["meter"]
    states = drift.states_of([meter])[meter.pk]
    return {
        "config_states": states,
        "limiter_state": next(s for s in states if s.section == config.LIMITER),
    }


configuration_panel = Panel("loadcontrol/panels/meter_configuration.html", panel_context)
