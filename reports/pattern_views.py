"""The customer patterns page (`/reports/patterns/`): clusters of load shapes, the typical
shape per customer class and the customers whose shape changed; CSV/XLSX of every meter.
And the meters' events as a CIM EndDeviceEvents document (`/reports/events/cim.xml`)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.views import View
from django.views.generic import TemplateView

from accounts import audit
from accounts.mixins import ScopedViewMixin
from meters.choices import NodeKind
from meters.models import GridNode, Meter
from meters.store.query import select_meters

from . import billing, charts, patterns
from .exporters import cim_events
from .views import _period_or_error, _queries, _table_export

CSS = ("series-a", "series-b", "series-c", "series-d", "series-e", "series-f")
HOURS = [f"{h:02d}" for h in range(24)]
EXPORT_FORMATS = ("csv", "xlsx")


def shape_charts(title: str, named_shapes) -> list[dict]:
    """Weekday and weekend charts of (name, shape) pairs (at most six lines each)."""
    out = []
    for part, cut in (("weekdays", slice(0, 24)), ("weekends", slice(24, 48))):
        series = [
            charts.Series(name, CSS[i % len(CSS)], [round(float(v), 3) for v in shape[cut]])
            for i, (name, shape) in enumerate(named_shapes[: len(CSS)])
        ]
        out.append(charts.line_chart(f"{title}, {part}", HOURS, series, "× average hour"))
    return out


def request_filters(request):
    """(period, node, class, k, sort, error) from the query string; a bad value is named
    and replaced by its default."""
    get = request.GET
    errors = []
    if get.get("month") or get.get("from") or get.get("to"):
        period, error = _period_or_error(get)
        if error:
            errors.append(error)
    else:
        period = billing.Period.last_days(28)
    try:
        k = patterns.parse_k(get.get("k"))
    except ValueError as exc:
        errors.append(f"Bad number of clusters: {exc}; showing {patterns.K_DEFAULT}.")
        k = patterns.K_DEFAULT
    node = None
    if (node_id := get.get("node", "")).isdigit():
        node = nodes(request.user).filter(pk=int(node_id)).first()
    sort = get.get("sort") if get.get("sort") in patterns.SORTS else "change"
    return period, node, get.get("class", ""), k, sort, " ".join(errors)


def nodes(user):
    return (
        GridNode.objects.restrict(user, "view")
        .exclude(kind=NodeKind.SERVICE_POINT)
        .order_by("path")
    )


class EndDeviceEventsView(ScopedViewMixin, View):
    """`/reports/events/cim.xml?from=&to=&node=`: the event logs of the meters in scope as
    an IEC 61968-9 EndDeviceEvents document (default: the last 7 local days), streamed."""

    model = Meter

    def get(self, request, *args, **kwargs):
        get = request.GET
        if get.get("month") or get.get("from") or get.get("to"):
            try:
                period = billing.Period.parse(get.get("month"), get.get("from"), get.get("to"))
            except ValueError as exc:
                return HttpResponseBadRequest(f"Bad period: {exc}", content_type="text/plain")
        else:
            period = billing.Period.last_days(7)
        node = None
        if node_id := get.get("node"):
            node = nodes(request.user).filter(pk=int(node_id) if node_id.isdigit() else None)
            node = node.first()
            if node is None:
                return HttpResponseBadRequest("No such grid node in your scope.",
                                              content_type="text/plain")  # fmt: skip
        meters = select_meters(Meter.objects.restrict(request.user, "view"), node=node)
        meters = meters.select_related("service_point", "meter_model").order_by("serial")
        audit.record(
            "export",
            user=request.user,
            detail=f"end device events cim, {period.first} to {period.last}"
            + (f", node {node.code}" if node else ""),
        )
        response = StreamingHttpResponse(
            cim_events.stream(meters, period.start, period.end), content_type="application/xml"
        )
        filename = f"end-device-events-{period.label}.xml"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class PatternReportView(ScopedViewMixin, TemplateView):
    """Load-shape clusters, typical shapes per class and changed customers; paged, sorted."""

    model = Meter
    template_name = "reports/patterns.html"
    page_size = 50

    def get(self, request, *args, **kwargs):
        period, node, customer_class, k, sort, error = request_filters(request)
        meters = patterns.customer_meters(request.user, node=node, customer_class=customer_class)
        analysis = patterns.analyse(meters, period, k)
        fmt = request.GET.get("format")
        if fmt in EXPORT_FORMATS:
            audit.record(
                "export",
                user=request.user,
                detail=f"customer patterns {fmt}, {period.first} to {period.last}, "
                f"{len(analysis.patterns)} meters" + (f", node {node.code}" if node else ""),
            )
            return _table_export(
                fmt, "Customer patterns", patterns.COLUMNS, patterns.rows(analysis, sort),
                f"customer-patterns-{period.label}",
            )  # fmt: skip
        labels = {c.number: c.label for c in analysis.clusters}
        page = Paginator(patterns.ordered(analysis, sort), self.page_size).get_page(
            request.GET.get("page")
        )
        query_string, export_query = _queries(request.GET)
        context = {
            "period": period, "error": error, "analysis": analysis, "k": k, "sort": sort,
            "sorts": patterns.SORTS, "node": node, "nodes": nodes(request.user),
            "customer_class": customer_class, "class_names": patterns.class_names(request.user),
            "no_class": patterns.NO_CLASS, "page": page, "labels": labels,
            "results": [(p, labels.get(p.cluster, "")) for p in page.object_list],
            "cluster_charts": shape_charts(
                "Cluster shapes", [(f"{c.number}: {c.label}", c.shape) for c in analysis.clusters]
            ),
            "class_charts": shape_charts("Typical shape per class", list(analysis.classes.items())),
            "threshold": patterns.change_share(), "query_string": query_string,
            "export_query": export_query, "k_range": range(patterns.K_MIN, patterns.K_MAX + 1),
        }  # fmt: skip
        return self.render_to_response(self.get_context_data(**context))
