"""The meter page: registry, communication, last reads, graphs, events, runs, phasors."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from django.core.paginator import Paginator
from django.views.generic import DetailView

from accounts.mixins import ScopedViewMixin

from .alarms.events import describe
from .choices import ChannelKind
from .models import Channel, Meter
from .store import EventRecord, IntervalReading, RegisterRead, to_decimal

EVENTS_PER_PAGE = 20
REGISTER_HISTORY = 30
RUNS_SHOWN = 20
# Phase order L1, L2, L3: voltages 120 degrees apart, L2 lagging L1 (positive sequence).
VOLTAGE_ANGLES = (0.0, -120.0, 120.0)
PHASOR_RADIUS = 100


def alarms_module():
    """The alarms app, when it is installed (it is being built beside this page)."""
    try:
        from meters import alarms
    except ImportError:
        return None
    return alarms


class MeterDetailView(ScopedViewMixin, DetailView):
    """One meter: registry data and settings (secrets masked), reads, graphs and history."""

    model = Meter
    slug_field = "serial"
    slug_url_kwarg = "serial"
    template_name = "meters/meter_detail.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related(
            "meter_model", "service_point", "concentrator", "organisation"
        )

    def get_context_data(self, **kwargs):
        from collection.choices import ReadItem

        context = super().get_context_data(**kwargs)
        meter = self.object
        channels = list(Channel.objects.filter(meter_model_id=meter.meter_model_id))
        registers = [c for c in channels if c.kind == ChannelKind.REGISTER]
        context.update(
            read_items=ReadItem.choices,
            default_items=[ReadItem.CLOCK, ReadItem.REGISTERS, ReadItem.RELAY],
            profile_channels=[c for c in channels if c.kind == ChannelKind.PROFILE],
            register_channels=registers,
            last_reads=last_register_reads(meter, registers),
            alarms_available=alarms_module() is not None,
            graph_end=latest_interval_end(meter, channels),
            **self.register_history(meter, registers),
            **self.collection_context(meter),
        )
        events = EventRecord.objects.filter(meter_id=meter.pk).order_by("-ts", "-code")
        page = Paginator(events, EVENTS_PER_PAGE).get_page(self.request.GET.get("events_page"))
        for event in page:
            event.described = describe(event.code, event.log, meter.meter_model)
        context["events"] = page
        return context

    def register_history(self, meter, registers) -> dict:
        by_obis = {c.obis: c for c in registers}
        chosen = by_obis.get(self.request.GET.get("register", "")) or (
            registers[0] if registers else None
        )
        if chosen is None:
            return {"register": None, "register_history": []}
        reads = RegisterRead.objects.filter(meter_id=meter.pk, channel_id=chosen.pk).order_by(
            "-read_at"
        )[:REGISTER_HISTORY]
        history = [
            {
                "read_at": r.read_at,
                "value": to_decimal(r.value, chosen.scaler),
                "capture_time": r.capture_time,
                "quality": r.quality,
            }
            for r in reads
        ]
        return {"register": chosen, "register_history": history}

    def collection_context(self, meter) -> dict:
        """Reachability, this meter's runs and the last instantaneous values (in scope)."""
        from collection.models import CommStatus, MeterReadResult

        user = self.request.user
        comm = CommStatus.objects.restrict(user, "view").filter(meter_id=meter.pk).first()
        results = (
            MeterReadResult.objects.restrict(user, "view")
            .filter(meter_id=meter.pk)
            .select_related("run", "run__job")
            .order_by("-run__created_at", "-run_id")
        )
        latest = (
            results.filter(data__has_key="instantaneous").exclude(data__instantaneous=None).first()
        )
        return {
            "comm_status": comm,
            "runs": list(results[:RUNS_SHOWN]),
            "phasor": phasor_diagram(latest.data["instantaneous"], meter.phases)
            if latest
            else None,
            "phasor_result": latest,
        }


def latest_interval_end(meter, channels) -> str:
    """The newest stored interval end (ISO), where the graph opens; empty: none stored."""
    groups = sorted({c.profile_group for c in channels if c.profile_group is not None})
    if not groups:
        return ""
    ts = (
        IntervalReading.objects.filter(meter_id=meter.pk, group=groups[0])
        .order_by("-ts")
        .values_list("ts", flat=True)
        .first()
    )
    return ts.isoformat() if ts else ""


def last_register_reads(meter, registers) -> list[dict]:
    """The latest read of each register channel of the meter's model."""
    out = []
    for channel in registers:
        read = (
            RegisterRead.objects.filter(meter_id=meter.pk, channel_id=channel.pk)
            .order_by("-read_at")
            .first()
        )
        out.append(
            {
                "channel": channel,
                "value": to_decimal(read.value, channel.scaler) if read else None,
                "read_at": read.read_at if read else None,
                "capture_time": read.capture_time if read else None,
            }
        )
    return out


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
