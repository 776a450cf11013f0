"""The reports pages: the data query (graph, exports direct or queued, export jobs), the
collection success report, the vending reports and the billing determinants."""

from __future__ import annotations

import os
import tempfile
from itertools import islice

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.text import slugify
from django.views.generic import DetailView, TemplateView

from accounts import audit
from accounts.mixins import ScopedViewMixin
from amisite.badinput import int_param
from collection.models import JobRun
from meters.choices import NodeKind
from meters.models import GridNode, Meter
from meters.store import query
from meters.store.days import local_zone
from vending.models import Sale

from . import (
    actions,
    balance,
    billing,
    billing_export,
    charts,
    collection,
    exporters,
    load,
    tamper,
    vending,
)
from .building import export_title
from .exporters import FORMATS, table, table_pdf
from .forms import DataQueryForm
from .models import ExportJob, ExportStatus

PAGE_SIZE = 100
GRAPH_SERIES = 8


def direct_export_limit() -> int:
    """Exports estimated above this many rows are queued (a task writes them to MEDIA_ROOT)."""
    return int(getattr(settings, "AMI_EXPORT_DIRECT_ROWS", 50_000))


class QueryPageMixin(ScopedViewMixin):
    """Meters in scope, plus the view permission on exports, open the data query."""

    model = Meter

    def get_permission_required(self):
        return [*super().get_permission_required(), "reports.view_exportjob"]

    def get_form(self):
        return DataQueryForm(self.request.GET or None, user=self.request.user)


class DataQueryView(QueryPageMixin, TemplateView):
    """Choose meters, quantities and a range; see a paged table and a graph; export."""

    template_name = "reports/query.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = self.get_form()
        context["form"] = form
        context["formats"] = list(FORMATS)
        if form.is_bound and form.is_valid():
            data_query = form.build()
            try:
                page = max(1, int(self.request.GET.get("page", 1)))
            except ValueError:
                page = 1
            offset = (page - 1) * PAGE_SIZE
            rows = list(islice(data_query.rows(), offset, offset + PAGE_SIZE + 1))
            params = self.request.GET.copy()
            params.pop("page", None)
            if self.request.user.has_perm("reports.add_reportdefinition"):
                context["save_as"] = (
                    reverse("reports:definition-new") + "?source=query&" + params.urlencode()
                )
            context.update(
                data_query=data_query,
                rows=rows[:PAGE_SIZE],
                page=page,
                has_next=len(rows) > PAGE_SIZE,
                has_previous=page > 1,
                meter_count=data_query.meters.count(),
                query_string=params.urlencode(),
            )
        return context


class QueryGraphView(QueryPageMixin, TemplateView):
    """JSON for the query page's graph: the first few (meter, channel) series."""

    def get(self, request, *args, **kwargs):
        form = self.get_form()
        if not form.is_valid():
            return JsonResponse({"errors": form.errors}, status=400)
        data_query = form.build()
        out = []
        for meter, channel in islice(data_query.segments(), GRAPH_SERIES):
            points = list(
                query.series(
                    meter.pk, channel, data_query.start, data_query.end, data_query.resolution
                )
            )
            out.append(
                {
                    "meter": meter.serial,
                    "obis": channel.obis,
                    "name": f"{meter.serial} {channel.name}"
                    + (" [head-end]" if channel.head_end_derived else ""),
                    "unit": channel.unit,
                    "kind": channel.kind,
                    "head_end_derived": channel.head_end_derived,
                    "panel": query.panel_of(channel)[0],
                    "panel_label": query.panel_of(channel)[1],
                    "timestamps": [p.ts.isoformat() for p in points],
                    "values": [None if p.value is None else str(p.value) for p in points],
                    "quality": [p.flags for p in points],
                }
            )
        return JsonResponse(
            {
                "resolution": data_query.resolution,
                "start": data_query.start.isoformat(),
                "end": data_query.end.isoformat(),
                "channels": out,
            }
        )


class ExportView(QueryPageMixin, TemplateView):
    """`POST /reports/query/export.<fmt>?<query>`: stream it, or queue it when it is large.

    POST only: an export writes an audit row and may create an export job, and a GET must
    change nothing (a prefetching browser or a link in a mail would otherwise queue work).
    The query itself stays in the URL's query string, as on the page that shows it.
    """

    http_method_names = ["post", "options"]

    def post(self, request, *args, fmt: str, **kwargs):
        if fmt not in FORMATS:
            raise Http404(f"unknown export format {fmt!r}")
        form = self.get_form()
        if not form.is_valid():
            return JsonResponse({"errors": form.errors}, status=400)
        data_query = form.build()
        estimate = data_query.estimate_rows()
        queued = estimate > direct_export_limit()
        audit.record(
            "export",
            user=request.user,
            detail=(
                f"data query {fmt}, {data_query.meters.count()} meters, "
                f"{', '.join(data_query.obis)}, {data_query.start:%Y-%m-%d} to "
                f"{data_query.end:%Y-%m-%d}, {data_query.resolution}, about {estimate} rows"
                + (", queued" if queued else "")
            ),
        )
        if queued:
            job = actions.queue_export(request.user, fmt, request.GET, estimate)
            return redirect("reports:export-job", pk=job.pk)
        title = export_title(form)
        content_type, ext = FORMATS[fmt]
        filename = f"{slugify(title) or 'meter-data'}.{ext}"
        if fmt in exporters.STREAMED:
            chunks = exporters.stream(fmt, data_query, title)
            response = StreamingHttpResponse(chunks, content_type=content_type)
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        handle, path = tempfile.mkstemp(suffix=f".{ext}", prefix="ami-export-")
        os.close(handle)
        try:
            exporters.write(fmt, data_query, path, title)
            stream = open(path, "rb")  # noqa: SIM115 (FileResponse closes it)
        finally:
            os.unlink(path)  # the open handle keeps the data until the response is sent
        return FileResponse(
            stream, as_attachment=True, filename=filename, content_type=content_type
        )


class ExportJobMixin(ScopedViewMixin):
    model = ExportJob

    def get_queryset(self):
        # In scope AND one's own: an export holds what its requester could see.
        return self.scoped_queryset().filter(requested_by=self.request.user)


class ExportJobView(ExportJobMixin, DetailView):
    """A queued export: progress (the page polls it) and the download when ready."""

    template_name = "reports/export_job.html"
    context_object_name = "job"


class ExportJobStatusView(ExportJobMixin, DetailView):
    def get(self, request, *args, **kwargs):
        job = self.get_object()
        return JsonResponse(
            {
                "id": job.pk,
                "status": job.status,
                "status_label": job.get_status_display(),
                "rows_done": job.rows_done,
                "rows_estimated": job.rows_estimated,
                "percent": job.percent,
                "error": job.error,
                "download": reverse("reports:export-download", args=[job.pk])
                if job.status == ExportStatus.DONE
                else None,
            }
        )


class ExportJobDownloadView(ExportJobMixin, DetailView):
    def get(self, request, *args, **kwargs):
        job = self.get_object()
        if job.status != ExportStatus.DONE or not job.file:
            raise Http404("the export is not ready")
        path = os.path.join(settings.MEDIA_ROOT, job.file)
        if not os.path.exists(path):
            raise Http404("the export file is gone")
        content_type, ext = FORMATS[job.fmt]
        return FileResponse(
            open(path, "rb"),  # noqa: SIM115
            as_attachment=True,
            filename=f"meter-data-{job.pk}.{ext}",
            content_type=content_type,
        )


class CollectionReportView(ScopedViewMixin, TemplateView):
    """Collection success per day and job, feeder, transformer or meter model; CSV on request."""

    model = JobRun
    template_name = "reports/collection.html"

    def get(self, request, *args, **kwargs):
        group = request.GET.get("group", "job")
        if group not in collection.GROUPINGS:
            group = "job"
        days = int_param(request, "days", 7, 1, 366)
        rows = collection.collection_success(request.user, group=group, days=days)
        if request.GET.get("format") == "csv":
            audit.record(
                "export",
                user=request.user,
                detail=f"collection success report, {group}, {days} days, {len(rows)} rows",
            )
            return collection.csv_response(rows, group, days)
        groupings = list(collection.GROUPINGS)
        return self.render_to_response(
            self.get_context_data(rows=rows, group=group, days=days, groupings=groupings)
        )


class VendingReportsView(ScopedViewMixin, TemplateView):
    """Every vending report for a period of local days (default: this month), each as CSV."""

    model = Sale
    template_name = "reports/vending.html"

    def period(self):
        try:
            return vending.Period.parse(self.request.GET.get("from"), self.request.GET.get("to"))
        except ValueError as exc:
            messages.error(self.request, f"Bad period: {exc}; showing this month.")
            return vending.Period.parse(None, None)

    def get(self, request, *args, **kwargs):
        table = request.GET.get("csv")
        if table in vending.TABLES:
            return vending.csv_response(table, self.period(), request.user)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        period = self.period()
        sources = vending.sources_for(self.request.user)
        tables = []
        for slug in vending.TABLES:
            title, columns, rows = vending.build(slug, sources, period)
            cells = [[vending.shown(key, row[key]) for key, _h in columns] for row in rows[:500]]
            headings = [heading for _key, heading in columns]
            tables.append({"slug": slug, "title": title, "headings": headings, "rows": cells})
        return {**super().get_context_data(**kwargs), "tables": tables, "period": period}


SORT_LABELS = [("serial", "meter"), ("-serial", "meter, descending"), ("point", "service point"),
               ("-point", "service point, descending"), ("model", "meter model"),
               ("-model", "meter model, descending")]  # fmt: skip


class BillingReportView(ScopedViewMixin, TemplateView):
    """Billing determinants per meter for a month or period, paged and sortable; CSV/XLSX.

    An export is held back (409, the held meters named, no file) when a meter's estimated or
    missing share passes `AMI_BILLING_MAX_ESTIMATED_SHARE`, unless `include_held=1`: then the
    held meters come separately (after the others in CSV, on their own sheet in XLSX).
    """

    model = Meter
    template_name = "reports/billing.html"
    page_size = 50

    def nodes(self):
        return (
            GridNode.objects.restrict(self.request.user, "view")
            .exclude(kind=NodeKind.SERVICE_POINT)
            .order_by("path")
        )

    def get(self, request, *args, **kwargs):
        get = request.GET
        error = ""
        try:
            period = billing.Period.parse(get.get("month"), get.get("from"), get.get("to"))
        except ValueError as exc:
            error = f"Bad period: {exc}; showing last month."
            period = billing.Period.parse(None, None, None)
        node = None
        node_id = get.get("node", "")
        if node_id.isdigit():
            node = self.nodes().filter(pk=int(node_id)).first()
        sort = get.get("sort") if get.get("sort") in billing.SORTS else "serial"
        meters = billing.meters_for(request.user, node=node, sort=sort)
        context = {
            "period": period, "node": node, "nodes": self.nodes(), "sort": sort,
            "error": error, "threshold": billing.max_estimated_share(),
            "month": f"{period.first:%Y-%m}", "sorts": SORT_LABELS,
            "export_query": self.export_query(),
        }  # fmt: skip
        fmt = get.get("format")
        if fmt in billing_export.FORMATS:
            return self.export(meters, period, fmt, node, context)
        paginator = Paginator(meters, self.page_size)
        page = paginator.get_page(get.get("page"))
        params = get.copy()
        params.pop("page", None)
        context.update(
            page=page,
            results=list(billing.determinants(page.object_list, period)),
            query_string=params.urlencode(),
        )
        return self.render_to_response(self.get_context_data(**context))

    def export_query(self) -> str:
        params = self.request.GET.copy()
        for key in ("page", "format", "include_held"):
            params.pop(key, None)
        return params.urlencode()

    def export(self, meters, period, fmt, node, context):
        """Written to a temporary file in one pass (flat memory), then sent; refused (409)
        when meters are held and not asked for."""
        handle, path = tempfile.mkstemp(suffix=f".{fmt}", prefix="ami-billing-")
        os.close(handle)
        try:
            include_held = self.request.GET.get("include_held") == "1"
            written = billing_export.write_export(
                meters, period, fmt, path, include_held=include_held
            )
            if not written.complete:
                context["held_back"] = written.held
                return self.render_to_response(self.get_context_data(**context), status=409)
            audit.record(
                "export",
                user=self.request.user,
                detail=f"billing determinants {fmt}, {period.first} to {period.last}, "
                f"{written.ready} meters, {len(written.held)} held"
                + (f", node {node.code}" if node else ""),
            )
            stream = open(path, "rb")  # noqa: SIM115 (FileResponse closes it)
        finally:
            os.unlink(path)
        filename = f"billing-determinants-{period.label}.{fmt}"
        return FileResponse(
            stream, as_attachment=True, filename=filename, content_type=FORMATS[fmt][0]
        )


def _period_or_error(get) -> tuple[billing.Period, str]:
    """The period asked for (`month` or `from`/`to`), else last month with a message."""
    try:
        return billing.Period.parse(get.get("month"), get.get("from"), get.get("to")), ""
    except ValueError as exc:
        return billing.Period.parse(None, None, None), f"Bad period: {exc}; showing last month."


def _file_response(write, filename: str, fmt: str):
    """Write an XLSX through `write(path)` to a temporary file and send it."""
    handle, path = tempfile.mkstemp(suffix=f".{fmt}", prefix="ami-report-")
    os.close(handle)
    try:
        write(path)
        stream = open(path, "rb")  # noqa: SIM115 (FileResponse closes it)
    finally:
        os.unlink(path)
    return FileResponse(stream, as_attachment=True, filename=filename, content_type=FORMATS[fmt][0])


def _queries(get) -> tuple[str, str]:
    """The page's query without its page (for the pager) and without page and format (for
    the export links)."""
    params = get.copy()
    params.pop("page", None)
    query_string = params.urlencode()
    params.pop("format", None)
    return query_string, params.urlencode()


TABLE_FORMATS = ("csv", "xlsx", "pdf")


def _table_export(fmt: str, title: str, columns, rows, filename: str, *, chart=None, note=""):
    """A table report as a streamed CSV, an XLSX sheet (`exporters.table`) or a PDF with the
    page's graph (`chart`: (series, labels, unit); `exporters.table_pdf`)."""
    if fmt == "pdf":
        return _file_response(
            lambda path: table_pdf.write_pdf(
                path, title, note, columns, rows, table.report_cell, chart
            ),
            f"{filename}.pdf",
            "pdf",
        )
    if fmt == "csv":
        response = StreamingHttpResponse(
            table.csv_lines(columns, rows, table.report_cell), content_type=FORMATS["csv"][0]
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
    return _file_response(
        lambda path: table.write_xlsx(path, [(title, columns, rows)], table.report_cell),
        f"{filename}.xlsx",
        "xlsx",
    )


class EnergyBalanceView(ScopedViewMixin, TemplateView):
    """Energy balance and line loss of every feeder and transformer in scope for a period:
    check meters' input vs the downstream meters' delivered energy; CSV/XLSX."""

    model = GridNode
    template_name = "reports/balance.html"
    page_size = 50

    def get(self, request, *args, **kwargs):
        get = request.GET
        period, error = _period_or_error(get)
        kind = get.get("kind") if get.get("kind") in (NodeKind.FEEDER, NodeKind.TRANSFORMER) else ""
        nodes = balance.nodes_for(request.user, kind=kind or None)
        fmt = get.get("format")
        if fmt in TABLE_FORMATS:
            results = balance.balances(request.user, nodes, period)
            audit.record(
                "export",
                user=request.user,
                detail=f"energy balance {fmt}, {period.first} to {period.last}, "
                f"{len(results)} nodes",
            )
            return _table_export(
                fmt, "Energy balance", balance.LIST_COLUMNS, balance.list_rows(results),
                f"energy-balance-{period.label}", note=f"{period.first} to {period.last}, Wh",
            )  # fmt: skip
        page = Paginator(nodes, self.page_size).get_page(get.get("page"))
        query_string, export_query = _queries(get)
        context = {
            "period": period, "error": error, "kind": kind, "page": page,
            "results": balance.balances(request.user, page.object_list, period),
            "query_string": query_string, "export_query": export_query,
            "month": f"{period.first:%Y-%m}", "alert": balance.alert_percent(),
        }  # fmt: skip
        return self.render_to_response(self.get_context_data(**context))


class EnergyBalanceNodeView(ScopedViewMixin, DetailView):
    """One feeder or transformer: its balance per interval, day or month with a graph, the
    technical/non-technical hints, and the drill-down (transformers, meters); CSV/XLSX."""

    model = GridNode
    template_name = "reports/balance_node.html"
    context_object_name = "node"
    shares_shown = 50

    def get_queryset(self):
        return super().get_queryset().filter(kind__in=(NodeKind.FEEDER, NodeKind.TRANSFORMER))

    def get(self, request, *args, **kwargs):
        node = self.object = self.get_object()
        get = request.GET
        period, error = _period_or_error(get)
        resolution = (
            get.get("resolution") if get.get("resolution") in balance.RESOLUTIONS else "day"
        )
        try:
            result = balance.node_balance(request.user, node, period, resolution)
        except ValueError as exc:
            error = f"{exc}; showing days."
            resolution = "day"
            result = balance.node_balance(request.user, node, period, resolution)
        labels = [balance.short_label(b, resolution, period) for b in result.buckets]
        series = [
            charts.Series("input (check meters)", "series-a", [b.input for b in result.buckets]),
            charts.Series(
                "delivered (meters below)", "series-b", [b.delivered for b in result.buckets]
            ),  # fmt: skip
            charts.Series("loss", "series-c", [b.loss for b in result.buckets]),
        ]
        fmt = get.get("format")
        if fmt in TABLE_FORMATS:
            audit.record(
                "export",
                user=request.user,
                detail=f"energy balance {fmt}, {node.code}, {resolution}, "
                f"{period.first} to {period.last}",
            )
            return _table_export(
                fmt, f"Energy balance {node.code}", balance.BUCKET_COLUMNS,
                balance.bucket_rows(result), f"energy-balance-{node.code}-{period.label}",
                chart=(series, labels, "Wh"),
                note=f"{period.first} to {period.last} per {resolution}, Wh; "
                + " ".join(result.hints),
            )  # fmt: skip
        chart = charts.line_chart(f"Energy balance of {node.code}", labels, series, "Wh")
        export = get.copy()
        export.pop("format", None)
        context = {
            "period": period, "error": error, "resolution": resolution, "result": result,
            "chart": chart, "resolutions": balance.RESOLUTIONS,
            "month": f"{period.first:%Y-%m}", "export_query": export.urlencode(),
            "shares": result.shares[: self.shares_shown], "alert": balance.alert_percent(),
        }  # fmt: skip
        return self.render_to_response(self.get_context_data(**context))


def _recent_week() -> billing.Period:
    return billing.Period.last_days(7)


def _load_period(get) -> tuple[billing.Period, str]:
    """`from`/`to` or `month` (at most 31 days), else the last seven days."""
    if not (get.get("month") or get.get("from") or get.get("to")):
        return _recent_week(), ""
    try:
        return billing.Period.parse(get.get("month"), get.get("from"), get.get("to")), ""
    except ValueError as exc:
        return _recent_week(), f"Bad period: {exc}; showing the last seven days."


class LoadReportView(ScopedViewMixin, TemplateView):
    """Load analysis: peak and its time, load factor, rating and overload hours of every
    feeder and transformer in scope (paged), and per customer class; CSV/XLSX."""

    model = GridNode
    template_name = "reports/load.html"
    page_size = 25

    def get(self, request, *args, **kwargs):
        get = request.GET
        period, error = _load_period(get)
        kind = get.get("kind") if get.get("kind") in (NodeKind.FEEDER, NodeKind.TRANSFORMER) else ""
        nodes = load.nodes_for(request.user, kind or None)
        try:
            load.check_period(period)
        except ValueError as exc:
            error, period = f"{exc}; showing the last seven days.", _recent_week()
        fmt = get.get("format")
        if fmt in TABLE_FORMATS:
            profiles = load.node_loads(request.user, nodes, period)
            profiles += load.class_loads(request.user, period)
            audit.record(
                "export",
                user=request.user,
                detail=f"load analysis {fmt}, {period.first} to {period.last}, "
                f"{len(profiles)} nodes and classes",
            )
            return _table_export(
                fmt, "Load analysis", load.COLUMNS, (load.summary(p) for p in profiles),
                f"load-analysis-{period.label}",
            )  # fmt: skip
        page = Paginator(nodes, self.page_size).get_page(get.get("page"))
        query_string, export_query = _queries(get)
        context = {
            "period": period, "error": error, "kind": kind, "page": page,
            "rows": [load.summary(p) | {"node": p.node}
                     for p in load.node_loads(request.user, page.object_list, period)],
            "classes": [load.summary(p) for p in load.class_loads(request.user, period)],
            "query_string": query_string, "export_query": export_query,
        }  # fmt: skip
        return self.render_to_response(self.get_context_data(**context))


class LoadNodeView(ScopedViewMixin, DetailView):
    """One feeder or transformer: demand over the period and its load-duration curve (graphs),
    peak, load factor, rating and overload hours; the curve as CSV/XLSX."""

    model = GridNode
    template_name = "reports/load_node.html"
    context_object_name = "node"

    def get_queryset(self):
        return super().get_queryset().filter(kind__in=(NodeKind.FEEDER, NodeKind.TRANSFORMER))

    def get(self, request, *args, **kwargs):
        node = self.object = self.get_object()
        period, error = _load_period(request.GET)
        try:
            profile = load.node_load(request.user, node, period)
        except ValueError as exc:
            error, period = f"{exc}; showing the last seven days.", _recent_week()
            profile = load.node_load(request.user, node, period)
        fmt = request.GET.get("format")
        if fmt in TABLE_FORMATS:
            audit.record(
                "export",
                user=request.user,
                detail=f"load-duration curve {fmt}, {node.code}, {period.first} to {period.last}",
            )
            curve = profile.duration_curve()
            row = load.summary(profile)
            return _table_export(
                fmt, f"Load duration {node.code}", load.CURVE_COLUMNS, load.curve_rows(profile),
                f"load-duration-{node.code}-{period.label}",
                chart=([charts.Series("demand", "series-a", curve)],
                       [str(i + 1) for i in range(len(curve))], "kW"),
                note=f"{period.first} to {period.last}: peak {row['peak_kw']} kW at "
                f"{row['peak_at']}, load factor {row['load_factor']}, overload "
                f"{row['overload_hours']} h",
            )  # fmt: skip
        zone = local_zone()
        one_day = period.first == period.last
        times = [
            f"{at.astimezone(zone):%H:%M}" if one_day else f"{at.astimezone(zone):%d %b}"
            for at, _kw in profile.demand
        ]
        # the capacity line only when it is on the demand's scale (else it flattens it)
        near = profile.rated_kw and profile.peak and profile.peak[1] * 4 >= profile.rated_kw
        capacity = [profile.rated_kw] * len(profile.demand) if near else []
        series = [charts.Series("demand", "series-a", [kw for _t, kw in profile.demand])]
        if capacity:
            series.append(charts.Series("capacity", "series-c", capacity))
        demand_chart = charts.line_chart(f"Demand of {node.code}", times, series, "kW")
        curve = profile.duration_curve()
        hours = [f"{(i + 1) * len(profile.demand) / max(len(curve), 1) / 4:.0f} h"
                 for i in range(len(curve))]  # fmt: skip
        curve_series = [charts.Series("demand", "series-a", curve)]
        if capacity:
            curve_series.append(
                charts.Series("capacity", "series-c", [profile.rated_kw] * len(curve))
            )
        curve_chart = charts.line_chart(f"Load-duration curve of {node.code}", hours,
                                        curve_series, "kW")  # fmt: skip
        export = request.GET.copy()
        export.pop("format", None)
        context = {
            "period": period, "error": error, "profile": profile, "row": load.summary(profile),
            "demand_chart": demand_chart, "curve_chart": curve_chart,
            "export_query": export.urlencode(),
        }  # fmt: skip
        return self.render_to_response(self.get_context_data(**context))


class TamperReportView(ScopedViewMixin, TemplateView):
    """Tamper, revenue protection and communication per meter, ranked by score (the most
    suspicious first), for a period of local days (default the last 30); CSV/XLSX."""

    model = Meter
    template_name = "reports/tamper.html"
    page_size = 50

    def get(self, request, *args, **kwargs):
        get = request.GET
        error = ""
        if get.get("month") or get.get("from") or get.get("to"):
            period, error = _period_or_error(get)
        else:
            period = billing.Period.last_days(30)
        ranked = tamper.findings(request.user, period)
        fmt = get.get("format")
        if fmt in TABLE_FORMATS:
            audit.record(
                "export",
                user=request.user,
                detail=f"tamper report {fmt}, {period.first} to {period.last}, "
                f"{len(ranked)} meters",
            )
            return _table_export(
                fmt, "Tamper and communication", tamper.COLUMNS, tamper.rows(ranked),
                f"tamper-{period.label}",
            )  # fmt: skip
        page = Paginator(ranked, self.page_size).get_page(get.get("page"))
        query_string, export_query = _queries(get)
        context = {
            "period": period, "error": error, "page": page, "results": page.object_list,
            "flagged": sum(1 for f in ranked if f.score), "query_string": query_string,
            "export_query": export_query,
        }  # fmt: skip
        return self.render_to_response(self.get_context_data(**context))
