"""`GET /api/reports/patterns/`: customer load-shape clusters, typical shapes per class and
every customer meter's shape and change, paged (`reports.patterns`)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from amisite.pagination import Pagination
from meters.choices import NodeKind
from meters.models import GridNode

from .. import billing, patterns
from .serializers import PageSerializer
from .views import PERIOD_PARAMETERS, BillingPermission, _period


class ShapeSerializer(serializers.Serializer):
    weekday = serializers.ListField(child=serializers.CharField(), min_length=24, max_length=24)
    weekend = serializers.ListField(child=serializers.CharField(), min_length=24, max_length=24)


class PatternClusterSerializer(ShapeSerializer):
    number = serializers.IntegerField()
    label = serializers.CharField()
    meters = serializers.IntegerField()
    classes = serializers.DictField(child=serializers.IntegerField())


class PatternClassSerializer(ShapeSerializer):
    customer_class = serializers.CharField()


class PatternSummarySerializer(serializers.Serializer):
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    k = serializers.IntegerField()
    meters = serializers.IntegerField()
    shaped = serializers.IntegerField()
    changed = serializers.IntegerField()
    change_threshold = serializers.FloatField()
    clusters = PatternClusterSerializer(many=True)
    classes = PatternClassSerializer(many=True)


class PatternMeterSerializer(serializers.Serializer):
    """One customer meter: its cluster, shape (multiples of its average hour, exact strings),
    energy now and before (Wh, strings) and the share of its day's energy that moved."""

    serial = serializers.CharField()
    service_point = serializers.CharField()
    customer_class = serializers.CharField()
    cluster = serializers.IntegerField(allow_null=True)
    cluster_label = serializers.CharField(allow_blank=True)
    distance = serializers.FloatField(allow_null=True)
    energy = serializers.CharField(allow_null=True)
    previous_energy = serializers.CharField(allow_null=True)
    moved_share = serializers.FloatField(allow_null=True)
    changed = serializers.BooleanField()
    flags = serializers.ListField(child=serializers.CharField())
    shape = ShapeSerializer(allow_null=True)


class PatternPageSerializer(PageSerializer):
    summary = PatternSummarySerializer()
    results = PatternMeterSerializer(many=True)


class PatternView(APIView):
    """Customer patterns over local days (default: the last 28): `node` (a grid subtree),
    `class` (a tariff code; `(none)`: customers without one), `k` (clusters, 2-12),
    `sort` (change, serial, cluster), `page`/`page_size`. `summary` holds the clusters and
    the typical shape per class; `results` the meters in scope."""

    permission_classes = [permissions.IsAuthenticated, BillingPermission]

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("node", int, description="grid node id: its subtree"),
            OpenApiParameter("class", str, description="customer class (tariff code)"),
            OpenApiParameter("k", int, description="number of clusters, 2 to 12 (default 4)"),
            OpenApiParameter("sort", str, enum=list(patterns.SORTS)),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=PatternPageSerializer,
    )
    def get(self, request):
        get = request.GET
        if get.get("month") or get.get("from") or get.get("to"):
            period = _period(request)
        else:
            period = billing.Period.last_days(28)
        try:
            k = patterns.parse_k(get.get("k"))
        except ValueError as exc:
            raise ValidationError({"k": [str(exc)]}) from None
        node = None
        if node_id := get.get("node"):
            node = (
                GridNode.objects.restrict(request.user, "view")
                .exclude(kind=NodeKind.SERVICE_POINT)
                .filter(pk=int(node_id) if node_id.isdigit() else None)
                .first()
            )
            if node is None:
                raise ValidationError({"node": ["no such grid node in your scope"]})
        sort = get.get("sort") or "change"
        if sort not in patterns.SORTS:
            raise ValidationError({"sort": [f"one of {', '.join(patterns.SORTS)}"]})
        meters = patterns.customer_meters(
            request.user, node=node, customer_class=get.get("class", "")
        )
        analysis = patterns.analyse(meters, period, k)
        labels = {c.number: c.label for c in analysis.clusters}
        paginator = Pagination()
        page = paginator.paginate_queryset(patterns.ordered(analysis, sort), request, view=self)
        data = [patterns.as_json(p, labels) for p in page]
        response = paginator.get_paginated_response(PatternMeterSerializer(data, many=True).data)
        response.data["summary"] = PatternSummarySerializer(patterns.summary_json(analysis)).data
        return response
