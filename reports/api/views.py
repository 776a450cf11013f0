"""The reports API: each vending report for a period of local days, as JSON or CSV, and the
billing determinants per meter, paged."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from amisite.pagination import KeysetPaging, Pagination, split_page
from meters.choices import NodeKind
from meters.models import GridNode

from .. import balance, billing, load, tamper, vending
from .serializers import (
    BalanceDetailSerializer,
    BalanceNodeSerializer,
    BalancePageSerializer,
    BillingCursorPageSerializer,
    BillingMeterSerializer,
    BillingPageSerializer,
    LoadDetailSerializer,
    LoadPageSerializer,
    LoadSerializer,
    ReportSerializer,
    TamperMeterSerializer,
    TamperPageSerializer,
)


class ReportPermission(permissions.BasePermission):
    """Reports read sales: the caller needs `vending.view_sale` (rows are scoped anyway)."""

    def has_permission(self, request, view):
        return request.user.has_perm("vending.view_sale")


class ReportView(APIView):
    """A vending report for a period of local days: `?from=YYYY-MM-DD&to=YYYY-MM-DD`.

    `as=csv` downloads it; otherwise JSON with decimals as strings. Rows are what the
    caller's scope holds. Reports: revenue, vat, by-station, cash, debt-movements,
    remainders, by-tariff, debt (see docs/vending.md).
    """

    permission_classes = [permissions.IsAuthenticated, ReportPermission]

    @extend_schema(
        parameters=[
            OpenApiParameter("slug", str, OpenApiParameter.PATH, enum=list(vending.TABLES)),
            OpenApiParameter("from", str, description="first local day (ISO); default: 1st"),
            OpenApiParameter("to", str, description="last local day (ISO); default: today"),
            OpenApiParameter("as", str, enum=["json", "csv"], description="csv: a download"),
        ],
        responses=ReportSerializer,
    )
    def get(self, request, slug):
        if slug not in vending.TABLES:
            raise NotFound("no such report")
        try:
            period = vending.Period.parse(request.GET.get("from"), request.GET.get("to"))
        except ValueError as exc:
            raise ValidationError({"from": [str(exc)]}) from None
        if request.GET.get("as") == "csv":
            return vending.csv_response(slug, period, request.user)
        title, columns, rows = vending.build(slug, vending.sources_for(request.user), period)
        return Response({
            "report": slug, "title": title, "from": period.first, "to": period.last,
            "time_zone": str(period.zone),
            "columns": [{"key": key, "heading": heading} for key, heading in columns],
            "rows": [{key: vending.exact_cell(key, row) for key, _h in columns}
                     for row in rows],
        })  # fmt: skip


class BillingPermission(permissions.BasePermission):
    """Billing determinants read meters: the caller needs `meters.view_meter` (and sees only
    the meters in scope)."""

    def has_permission(self, request, view):
        return request.user.has_perm("meters.view_meter")


BILLING_PARAMETERS = [
    OpenApiParameter("month", str, description="YYYY-MM; default: last month"),
    OpenApiParameter("from", str, description="first local day (ISO)"),
    OpenApiParameter("to", str, description="last local day (ISO)"),
    OpenApiParameter("node", int, description="grid node id: its subtree"),
]


class BillingView(APIView):
    """Billing determinants per meter: `?month=YYYY-MM` or `?from=&to=` (local days; default:
    last month), `node` (a grid subtree), `sort`, `page`/`page_size`.

    Each meter: its registers' start and end reads (best read: actual > estimated >
    substituted), consumption (register delta, or the interval sum when a read is missing),
    the interval sum and difference, maximum demand with its time, estimated and missing
    shares, flags, and `held` (its share passes AMI_BILLING_MAX_ESTIMATED_SHARE). Decimals
    are strings, exact.
    """

    permission_classes = [permissions.IsAuthenticated, BillingPermission]

    @extend_schema(
        parameters=[
            *BILLING_PARAMETERS,
            OpenApiParameter("sort", str, enum=list(billing.SORTS)),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=BillingPageSerializer,
    )
    def get(self, request):
        period, node = _billing_request(request)
        meters = billing.meters_for(request.user, node=node, sort=request.GET.get("sort", "serial"))
        paginator = Pagination()
        page = paginator.paginate_queryset(meters, request, view=self)
        data = [billing.as_json(result, period) for result in billing.determinants(page, period)]
        response = paginator.get_paginated_response(BillingMeterSerializer(data, many=True).data)
        response.data["threshold"] = str(billing.max_estimated_share())
        return response


def _billing_request(request) -> tuple[billing.Period, GridNode | None]:
    """The period and the grid node (in scope, else 404) of a billing request."""
    get = request.GET
    try:
        period = billing.Period.parse(get.get("month"), get.get("from"), get.get("to"))
    except ValueError as exc:
        raise ValidationError({"month": [str(exc)]}) from None
    node = None
    if get.get("node"):
        if not get["node"].isdigit():
            raise ValidationError({"node": ["a grid node id"]})
        node = GridNode.objects.restrict(request.user, "view").filter(pk=get["node"]).first()
        if node is None:
            raise NotFound("no such grid node")
    return period, node


class BillingByMeterView(APIView):
    """The billing determinants of `/api/reports/billing/` (same period and `node`
    parameters, the same rows), ordered by meter id and paged by key: `next` carries an
    opaque cursor (`page_size` up to 1000), so a walk over a whole month's fleet costs the
    same per page however deep, and a meter added meanwhile shifts no page."""

    permission_classes = [permissions.IsAuthenticated, BillingPermission]

    @extend_schema(
        parameters=[
            *BILLING_PARAMETERS,
            OpenApiParameter("cursor", str, description="the `next` link's (opaque)"),
            OpenApiParameter("page_size", int, description="at most 1000; default 50"),
        ],
        responses=BillingCursorPageSerializer,
    )
    def get(self, request):
        period, node = _billing_request(request)
        paging = KeysetPaging("billing")
        key = paging.position(request)
        size = paging.get_page_size(request)
        meters = billing.meters_for(request.user, node=node).order_by("pk")
        if key is not None:
            if len(key) != 1 or not isinstance(key[0], int):
                raise ValidationError({"cursor": "not a cursor this list gave"})
            meters = meters.filter(pk__gt=key[0])
        page, last = split_page(list(meters[: size + 1]), size)
        data = [billing.as_json(result, period) for result in billing.determinants(page, period)]
        return paging.response(
            BillingMeterSerializer(data, many=True).data,
            None if last is None else [last.pk],
            threshold=str(billing.max_estimated_share()),
        )


class BalancePermission(permissions.BasePermission):
    """The energy balance reads the grid and meters: `meters.view_gridnode` and
    `meters.view_meter` (nodes and meters out of scope count nowhere)."""

    def has_permission(self, request, view):
        return request.user.has_perm("meters.view_gridnode") and request.user.has_perm(
            "meters.view_meter"
        )


PERIOD_PARAMETERS = [
    OpenApiParameter("month", str, description="YYYY-MM; default: last month"),
    OpenApiParameter("from", str, description="first local day (ISO)"),
    OpenApiParameter("to", str, description="last local day (ISO)"),
]


def _period(request) -> billing.Period:
    get = request.GET
    try:
        return billing.Period.parse(get.get("month"), get.get("from"), get.get("to"))
    except ValueError as exc:
        raise ValidationError({"month": [str(exc)]}) from None


class BalanceListView(APIView):
    """Energy balance of every feeder and transformer in scope over a period (local days):
    the check meters' net input, the downstream meters' net delivered energy, loss and loss %
    (over complete days only), flags. `kind` narrows to feeders or transformers; paged."""

    permission_classes = [permissions.IsAuthenticated, BalancePermission]

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("kind", str, enum=[NodeKind.FEEDER, NodeKind.TRANSFORMER]),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=BalancePageSerializer,
        operation_id="reports_energy_balance_list",
    )
    def get(self, request):
        period = _period(request)
        kind = request.GET.get("kind") or None
        if kind is not None and kind not in (NodeKind.FEEDER, NodeKind.TRANSFORMER):
            raise ValidationError({"kind": ["feeder or transformer"]})
        nodes = balance.nodes_for(request.user, kind=kind)
        paginator = Pagination()
        page = paginator.paginate_queryset(nodes, request, view=self)
        data = [balance.as_json(b) for b in balance.balances(request.user, page, period)]
        return paginator.get_paginated_response(BalanceNodeSerializer(data, many=True).data)


class BalanceNodeView(APIView):
    """One feeder or transformer: its balance per `resolution` (day, month, or interval for
    at most 31 days), technical/non-technical hints, a feeder's transformers and every meter
    below with its share and how that share moves with the loss. Out of scope: 404."""

    permission_classes = [permissions.IsAuthenticated, BalancePermission]
    queryset = GridNode.objects.filter(kind__in=(NodeKind.FEEDER, NodeKind.TRANSFORMER))

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("resolution", str, enum=list(balance.RESOLUTIONS)),
        ],
        responses=BalanceDetailSerializer,
    )
    def get(self, request, pk):
        period = _period(request)
        node = self.queryset.restrict(request.user, "view").filter(pk=pk).first()
        if node is None:
            raise NotFound("no such feeder or transformer")
        resolution = request.GET.get("resolution", "day")
        if resolution not in balance.RESOLUTIONS:
            raise ValidationError({"resolution": [", ".join(balance.RESOLUTIONS)]})
        try:
            result = balance.node_balance(request.user, node, period, resolution)
        except ValueError as exc:
            raise ValidationError({"resolution": [str(exc)]}) from None
        return Response(BalanceDetailSerializer(balance.as_json(result, detail=True)).data)


def _load_period(request) -> billing.Period:
    get = request.GET
    if not (get.get("month") or get.get("from") or get.get("to")):
        return billing.Period.last_days(7)
    period = _period(request)
    try:
        load.check_period(period)
    except ValueError as exc:
        raise ValidationError({"from": [str(exc)]}) from None
    return period


class LoadListView(APIView):
    """Load analysis of every feeder and transformer in scope (paged) over at most 31 local
    days (default: the last seven): peak demand and its time, average, load factor, a
    transformer's capacity (rating x AMI_LOAD_POWER_FACTOR), peak / capacity and overload
    hours; with `classes=1` the customer classes instead of the nodes."""

    permission_classes = [permissions.IsAuthenticated, BalancePermission]

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("kind", str, enum=[NodeKind.FEEDER, NodeKind.TRANSFORMER]),
            OpenApiParameter("classes", bool, description="per customer class (tariff code)"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=LoadPageSerializer,
        operation_id="reports_load_list",
    )
    def get(self, request):
        period = _load_period(request)
        kind = request.GET.get("kind") or None
        if kind is not None and kind not in (NodeKind.FEEDER, NodeKind.TRANSFORMER):
            raise ValidationError({"kind": ["feeder or transformer"]})
        classes = request.GET.get("classes", "false").lower()
        if classes not in ("0", "1", "false", "true"):
            raise ValidationError({"classes": ["true or false"]})
        paginator = Pagination()
        if classes in ("1", "true"):
            profiles = load.class_loads(request.user, period)
            page = paginator.paginate_queryset(profiles, request, view=self)
        else:
            nodes = paginator.paginate_queryset(
                load.nodes_for(request.user, kind), request, view=self
            )
            page = load.node_loads(request.user, nodes, period)
        data = [load.as_json(p) for p in page]
        return paginator.get_paginated_response(LoadSerializer(data, many=True).data)


class LoadNodeView(APIView):
    """One feeder or transformer: its figures, its demand per interval and its load-duration
    curve (sampled to 200 points). Out of scope: 404."""

    permission_classes = [permissions.IsAuthenticated, BalancePermission]
    queryset = GridNode.objects.filter(kind__in=(NodeKind.FEEDER, NodeKind.TRANSFORMER))

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=LoadDetailSerializer)
    def get(self, request, pk):
        period = _load_period(request)
        node = self.queryset.restrict(request.user, "view").filter(pk=pk).first()
        if node is None:
            raise NotFound("no such feeder or transformer")
        profile = load.node_load(request.user, node, period)
        return Response(LoadDetailSerializer(load.as_json(profile, detail=True)).data)


class TamperView(APIView):
    """Tamper, revenue protection and communication per meter in scope, ranked by score
    (the most suspicious first) over local days (default: the last 30), paged: tamper and
    reverse-energy events, consumption against the previous period and the transformer's
    median, consumption while the relay is open, reachability, read success and read time."""

    permission_classes = [permissions.IsAuthenticated, BillingPermission]

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],  # fmt: skip
        responses=TamperPageSerializer,
    )
    def get(self, request):
        get = request.GET
        if get.get("month") or get.get("from") or get.get("to"):
            period = _period(request)
        else:
            period = billing.Period.last_days(30)
        ranked = list(tamper.rows(tamper.findings(request.user, period)))
        paginator = Pagination()
        page = paginator.paginate_queryset(ranked, request, view=self)
        data = [tamper.as_json(row) for row in page]
        return paginator.get_paginated_response(TamperMeterSerializer(data, many=True).data)
