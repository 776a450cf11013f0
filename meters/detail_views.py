"""The meter page: registry, communication, last reads, graphs, events; other apps' panels.

Runs, phasors and "Read now" are collection's panels (meters/panels.py): this page names
their places, not collection.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.views.generic import DetailView

from accounts.mixins import ScopedViewMixin
from accounts.scoping import has_model_perm

from . import alarms
from .alarms.events import describe
from .choices import ChannelKind
from .models import Channel, CommStatus, Meter
from .panels import METER_ACTIONS, METER_HISTORY, METER_INSTRUMENTS, render_panels
from .store import EventRecord, RegisterRead, to_decimal
from .store.compaction import latest_stored

EVENTS_PER_PAGE = 20
REGISTER_HISTORY = 30
# Where other apps' panels go on this page (meters/panels.py): collection serves the
# phasors, the meter's runs and "Read now".
SLOTS = {"instruments": METER_INSTRUMENTS, "history": METER_HISTORY, "actions": METER_ACTIONS}


def alarms_module():
    """The alarms package (a test takes it away: the page renders without it)."""
    return alarms


class MeterDetailView(ScopedViewMixin, DetailView):
    """One meter: registry data and settings (secrets masked), reads, graphs and history."""

    model = Meter
    slug_field = "serial"
    slug_url_kwarg = "serial"
    template_name = "meters/meter_detail.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related(
            "meter_model", "service_point", "concentrator", "organisation", "endpoint",
            "comm_status",
        )  # fmt: skip

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        meter = self.object
        channels = list(Channel.objects.filter(meter_model_id=meter.meter_model_id))
        registers = [c for c in channels if c.kind == ChannelKind.REGISTER]
        history = self.register_history(meter, registers)
        # The chosen register's newest read is its history's first: not asked twice.
        known = {}
        if history["register"] is not None:
            newest = history["register_history"][:1]
            known[history["register"].pk] = newest[0]["read"] if newest else None
        context.update(
            profile_channels=[c for c in channels if c.kind == ChannelKind.PROFILE],
            register_channels=registers,
            last_reads=last_register_reads(meter, registers, known),
            alarms_available=alarms_module() is not None,
            graph_end=latest_interval_end(meter, channels),
            **history,
            comm_status=self.comm_status(meter),
        )
        events = EventRecord.objects.filter(meter_id=meter.pk).order_by("-ts", "-code")
        page = Paginator(events, EVENTS_PER_PAGE).get_page(self.request.GET.get("events_page"))
        for event in page:
            event.described = describe(event.code, event.log, meter.meter_model)
        context["events"] = page
        shown = {"meter": meter}
        context["panels"] = {
            name: render_panels(slot, self.request, shown) for name, slot in SLOTS.items()
        }
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
                "read": r,
            }
            for r in reads
        ]
        return {"register": chosen, "register_history": history}

    def comm_status(self, meter):
        """The meter's reachability, for users who may see comm statuses: the meter is in
        scope, and a comm status is scoped by its meter's organisation (`CommStatus.restrict`
        would find the same row), so it comes with the meter's own query."""
        if not has_model_perm(self.request.user, CommStatus, "view"):
            return None
        try:
            return meter.comm_status
        except CommStatus.DoesNotExist:
            return None


def latest_interval_end(meter, channels) -> str:
    """The newest stored interval end (ISO), where the graph opens; empty: none stored."""
    groups = sorted({c.profile_group for c in channels if c.profile_group is not None})
    if not groups:
        return ""
    row = latest_stored(meter.pk, groups[0])
    return row.ts.isoformat() if row else ""


def last_register_reads(meter, registers, known=None) -> list[dict]:
    """The latest read of each register channel of the meter's model (`known`: channel id ->
    its latest read or None, already read by the caller)."""
    known = known or {}
    out = []
    for channel in registers:
        if channel.pk in known:
            read = known[channel.pk]
        else:
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
