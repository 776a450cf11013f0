"""Dashboard pages of the grid and the meter registry (the dashboard issue makes them rich)."""

from __future__ import annotations

from django.db.models import Count, Q
from django.views.generic import DetailView, ListView, TemplateView

from accounts.mixins import ScopedViewMixin

from .choices import MeterStatus, NodeKind
from .models import GridNode, Meter


class GridTreeView(ScopedViewMixin, TemplateView):
    """The grid as an expandable tree with meter counts per node."""

    model = GridNode
    template_name = "meters/grid_tree.html"

    def get_context_data(self, **kwargs):
        nodes = list(
            self.scoped_queryset()
            .exclude(kind=NodeKind.SERVICE_POINT)
            .select_related("organisation")
            .order_by("path")
        )
        meters = Meter.objects.restrict(self.request.user, "view")
        counts = {}
        for node in nodes:
            counts[node.pk] = 0
        for path, total in meters.values_list("service_point__path").annotate(total=Count("id")):
            if not path:
                continue
            for pk in path.strip("/").split("/")[:-1]:
                if int(pk) in counts:
                    counts[int(pk)] += total
        by_parent: dict[int | None, list] = {}
        ids = {node.pk for node in nodes}
        for node in nodes:
            node.meter_count = counts.get(node.pk, 0)
            parent = node.parent_id if node.parent_id in ids else None
            by_parent.setdefault(parent, []).append(node)
        return {
            **super().get_context_data(**kwargs),
            "roots": by_parent.get(None, []),
            "children": by_parent,
        }


class MeterListView(ScopedViewMixin, ListView):
    """Meters with search, status filter, sorting and server-side paging."""

    model = Meter
    paginate_by = 50
    template_name = "meters/meter_list.html"
    SORTS = {"serial", "-serial", "status", "-status", "install_date", "-install_date"}

    def get_queryset(self):
        queryset = self.scoped_queryset().select_related("meter_model", "service_point")
        q = self.request.GET.get("q", "").strip()
        if q:
            queryset = queryset.filter(
                Q(serial__icontains=q)
                | Q(service_point__code__icontains=q)
                | Q(service_point__address__icontains=q)
                | Q(service_point__customers__account_number__icontains=q)
                | Q(service_point__customers__name__icontains=q)
            ).distinct()
        status = self.request.GET.get("status")
        if status in MeterStatus.values:
            queryset = queryset.filter(status=status)
        sort = self.request.GET.get("sort", "serial")
        return queryset.order_by(sort if sort in self.SORTS else "serial")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        params.pop("page", None)
        context.update(statuses=MeterStatus.choices, query=params.urlencode())
        return context


class MeterDetailView(ScopedViewMixin, DetailView):
    """One meter: registry data and communication settings, secrets masked."""

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
        context["read_items"] = ReadItem.choices
        context["default_items"] = [ReadItem.CLOCK, ReadItem.REGISTERS, ReadItem.RELAY]
        return context
