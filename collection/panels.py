"""Collection's panels on the registry pages (meters/panels.py, settings' `AMI_PANELS`).

On the meter page: the phasors of the last instantaneous read, the meter's runs and the
"Read now" form; on the meter list: "add to read job". Each reads collection's own rows,
scoped to the user.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.http import Http404

from meters.panels import Panel

from . import actions
from .choices import ReadItem
from .models import MeterReadResult, ReadJob

RUNS_SHOWN = 20
# Phase order L1, L2, L3: voltages 120 degrees apart, L2 lagging L1 (positive sequence).
VOLTAGE_ANGLES = (0.0, -120.0, 120.0)
PHASOR_RADIUS = 100


# What the two panels show of a result and its run: compiling and building every column of
# three tables was most of their time on the meter page.
RESULT_FIELDS = (
    "status",
    "error",
    "error_kind",
    "values_stored",
    "data",
    "run__created_at",
    "run__items",
    "run__kind",
    "run__job__name",
)


def _meter_results(request, meter):
    return (
        MeterReadResult.objects.restrict(request.user, "view")
        .filter(meter_id=meter.pk)
        .select_related("run", "run__job")
        .only(*RESULT_FIELDS)
        .order_by("-run__created_at", "-run_id")
    )


def _latest_runs(request, meter) -> list:
    """The meter's RUNS_SHOWN latest results, read once per request for both panels."""
    memo = request.__dict__.setdefault("_ami_meter_results", {})
    if meter.pk not in memo:
        memo[meter.pk] = list(_meter_results(request, meter)[:RUNS_SHOWN])
    return memo[meter.pk]


def _has_instantaneous(result) -> bool:
    data = result.data
    return isinstance(data, dict) and data.get("instantaneous") is not None


def phasor_context(request, page) -> dict:
    """The latest instantaneous values read from the meter (in scope), as a diagram."""
    meter = page["meter"]
    runs = _latest_runs(request, meter)
    # Usually among the latest runs (the runs panel's); else, when there are more, asked.
    latest = next((r for r in runs if _has_instantaneous(r)), None)
    if latest is None and len(runs) == RUNS_SHOWN:
        latest = (
            _meter_results(request, meter)
            .filter(data__has_key="instantaneous")
            .exclude(data__instantaneous=None)
            .first()
        )
    return {
        "phasor": phasor_diagram(latest.data["instantaneous"], meter.phases) if latest else None,
        "phasor_result": latest,
    }


def runs_context(request, page) -> dict:
    """This meter's latest runs (reads and commands), newest first."""
    return {"runs": _latest_runs(request, page["meter"])}


def read_now_context(request, page) -> dict:
    return {
        "read_items": ReadItem.choices,
        "default_items": [ReadItem.CLOCK, ReadItem.REGISTERS, ReadItem.RELAY],
    }


def read_jobs_context(request, page) -> dict | None:
    """The read jobs the user may add meters to; none: no bulk action."""
    jobs = list(ReadJob.objects.restrict(request.user, "change").only("name"))
    return {"jobs": jobs} if jobs else None


def add_meters_to_job(request, selection):
    """POST "add_to_job" from the meter list: the chosen meters join a read job's list."""
    job_id = request.POST.get("job") or ""
    job = (
        ReadJob.objects.restrict(request.user, "change")
        .filter(pk=job_id if job_id.isdigit() else None)
        .first()
    )
    if job is None:
        raise Http404("No such read job.")
    meters = selection.meters()
    if meters is None:
        return selection.back()
    added, skipped = actions.add_meters_to_read_job(
        job, meters, acting_user=request.user, filters=selection.filters.cleaned
    )
    note = f" ({skipped} outside the job's organisation or your write scope)" if skipped else ""
    messages.success(request, f"Added {added} meters to read job “{job.name}”{note}.")
    return selection.back()


phasors = Panel("collection/panels/meter_phasor.html", phasor_context)
meter_runs = Panel("collection/panels/meter_runs.html", runs_context)
read_now = Panel("collection/panels/meter_read_now.html", read_now_context)
add_to_read_job = Panel(
    "collection/panels/add_to_read_job.html",
    read_jobs_context,
    action="add_to_job",
    handle=add_meters_to_job,
)


def _number(text) -> Decimal | None:
    try:
        return None if text in (None, "") else Decimal(str(text))
    except InvalidOperation:
        return None


def phasor_diagram(instantaneous: dict, phases: int = 3) -> dict:
    """Arrow end points (SVG coordinates, centre 0,0, y up as negative) and the numbers.

    Voltages are drawn at 0/-120/+120 degrees scaled to the largest voltage; each current
    lags its voltage by the measured U-I angle, scaled to the largest current.
    """
    voltages = [_number(v) for v in instantaneous.get("voltages") or []]
    currents = [_number(v) for v in instantaneous.get("currents") or []]
    angles = [_number(v) for v in instantaneous.get("angles") or []]
    count = max(len(voltages), len(currents), 1)
    count = min(count, 3 if phases != 1 else max(1, min(count, 3)))
    v_max = max((v for v in voltages if v), default=Decimal(1))
    i_max = max((i for i in currents if i), default=Decimal(1))
    rows = []
    for n in range(count):
        u = voltages[n] if n < len(voltages) else None
        i = currents[n] if n < len(currents) else None
        phi = angles[n] if n < len(angles) else None
        u_angle = VOLTAGE_ANGLES[n]
        i_angle = u_angle - float(phi or 0)
        row = {
            "phase": f"L{n + 1}",
            "voltage": u,
            "current": i,
            "angle": phi,
            "voltage_angle": u_angle,
            "current_angle": round(i_angle, 1),
            "power_factor": round(math.cos(math.radians(float(phi))), 3)
            if phi is not None
            else None,
        }
        if u:
            row["u_xy"] = _point(float(u / v_max) * PHASOR_RADIUS, u_angle)
        if i:
            row["i_xy"] = _point(float(i / i_max) * PHASOR_RADIUS * 0.7, i_angle)
        rows.append(row)
    return {
        "phases": rows,
        "frequency": _number(instantaneous.get("frequency")),
        "active_power": _number(instantaneous.get("active_power")),
        "read_at": instantaneous.get("read_at"),
        "radius": PHASOR_RADIUS,
    }


def _point(length: float, degrees: float) -> tuple[float, float]:
    rad = math.radians(degrees)
    return round(length * math.cos(rad), 2), round(-length * math.sin(rad), 2)
