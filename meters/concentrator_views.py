"""Pages of data concentrators and shared lines: how each was last found, the meters behind it.

A concentrator's status is its line's (``CommLine``, written by collection after each read):
up, down (one fault, one alarm) or never read. Its page lists the meters it reports, each with
its own last read; a meter moved to another concentrator keeps its history (readings belong to
the meter) and shows on the new one's page. What the concentrator itself reports (its last
probe, ``ReportedMeter``) is reconciled with the registry there: each registered meter's
channel at the concentrator or "not reported", and the meters it reports that are not
registered behind it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.generic import ListView, TemplateView

from accounts.mixins import ScopedViewMixin

from .alarms.models import OPEN_STATES, Alarm
from .models import CommLine, DataConcentrator, Meter, ReportedMeter
from .views import _meter_health

SEARCH_MAX = 100


def _search(request) -> str:
    return (request.GET.get("q") or "").strip()[:SEARCH_MAX]


class _PagedList(ScopedViewMixin, ListView):
    paginate_by = 50
    SORTS: dict[str, list] = {}
    default_sort = ""

    def paginate_queryset(self, queryset, page_size):
        try:
            return super().paginate_queryset(queryset, page_size)
        except Http404:  # a page past the end: the first one
            self.kwargs["page"] = 1
            return super().paginate_queryset(queryset, page_size)

    def chosen_sort(self) -> str:
        sort = self.request.GET.get("sort", self.default_sort)
        return sort if sort in self.SORTS else self.default_sort

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        q, sort = _search(self.request), self.chosen_sort()
        params = {"q": q} if q else {}
        if self.request.GET.get("state") == "down":
            params["state"] = "down"
        filter_query = urlencode(params)
        if sort != self.default_sort:
            params["sort"] = sort
        context.update(q=q, sort=sort, query=urlencode(params), filter_query=filter_query)
        return context


class ConcentratorListView(_PagedList):
    """Concentrators in scope: search by serial, name or address; status; meters behind."""

    model = DataConcentrator
    template_name = "meters/concentrator_list.html"
    default_sort = "serial"
    SORTS = {
        "serial": ["serial"],
        "-serial": ["-serial"],
        "last_contact": [F("line__last_contact").asc(nulls_first=True), "serial"],
        "-last_contact": [F("line__last_contact").desc(nulls_last=True), "serial"],
        "meters": ["meter_count", "serial"],
        "-meters": ["-meter_count", "serial"],
    }

    def get_queryset(self):
        qs = self.scoped_queryset().select_related("line", "endpoint", "grid_node")
        q = _search(self.request)
        if q:
            qs = qs.filter(
                Q(serial__icontains=q) | Q(name__icontains=q) | Q(endpoint__host__icontains=q)
            )
        if self.request.GET.get("state") == "down":
            qs = qs.filter(line__down=True)
        return qs.annotate(meter_count=Count("meters")).order_by(*self.SORTS[self.chosen_sort()])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["down_only"] = self.request.GET.get("state") == "down"
        return context


class ConcentratorDetailView(ScopedViewMixin, TemplateView):
    """One concentrator: endpoint, status, open alarms of its line, the meters it reports."""

    model = DataConcentrator
    template_name = "meters/concentrator_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        concentrator = get_object_or_404(
            self.scoped_queryset().select_related("endpoint", "grid_node", "organisation"),
            pk=self.kwargs["pk"],
        )
        line = CommLine.objects.filter(concentrator=concentrator).first()
        user = self.request.user
        reported = ReportedMeter.objects.filter(concentrator=concentrator)
        by_serial = reported.filter(serial=OuterRef("serial"))
        meters = (
            Meter.objects.restrict(user, "view")
            .filter(concentrator=concentrator)
            .select_related("meter_model", "comm_status", "endpoint", "service_point")
            .annotate(
                dc_channel=Subquery(by_serial.values("channel")[:1]),
                dc_contact=Subquery(by_serial.values("last_contact")[:1]),
            )
            .order_by("serial")
        )
        page = Paginator(meters, 50).get_page(self.request.GET.get("page"))
        # Reported by the concentrator but registered behind no meter of it (any meter
        # behind it counts as registered, so nothing outside the user's scope shows here).
        behind = Meter.objects.filter(concentrator=concentrator, serial=OuterRef("serial"))
        unknown = reported.annotate(registered=Exists(behind)).filter(registered=False)
        unknown_page = Paginator(unknown.order_by("serial"), 50).get_page(
            self.request.GET.get("unknown_page")
        )
        # Reconciled once the concentrator gave a list (one that keeps none gives no rows).
        probed = reported.exists()
        missing = meters.filter(dc_channel__isnull=True).count() if probed else 0
        now = timezone.now()
        for meter in page:
            meter.health = _meter_health(meter, now)
        alarms = []
        if line is not None:
            alarms = list(
                Alarm.objects.restrict(user, "view")
                .filter(line=line, state__in=OPEN_STATES)
                .order_by("-last_event_at")[:20]
            )
        context.update(
            concentrator=concentrator,
            line=line,
            page_obj=page,
            alarms=alarms,
            probed=probed,
            unknown_page=unknown_page,
            missing=missing,
        )
        return context


class LineListView(_PagedList):
    """Every shared line and concentrator the head-end has read: status, last contact, faults."""

    model = CommLine
    template_name = "meters/line_list.html"
    default_sort = "key"
    SORTS = {
        "key": ["key"],
        "-key": ["-key"],
        "last_contact": [F("last_contact").asc(nulls_first=True), "key"],
        "-last_contact": [F("last_contact").desc(nulls_last=True), "key"],
        "failures": ["consecutive_failures", "key"],
        "-failures": ["-consecutive_failures", "key"],
    }

    def get_queryset(self):
        qs = self.scoped_queryset().select_related("concentrator")
        q = _search(self.request)
        if q:
            qs = qs.filter(Q(key__icontains=q) | Q(label__icontains=q))
        if self.request.GET.get("state") == "down":
            qs = qs.filter(down=True)
        return qs.order_by(*self.SORTS[self.chosen_sort()])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["down_only"] = self.request.GET.get("state") == "down"
        return context
