"""The reports API: each vending report for a period of local days, as JSON or CSV."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import vending
from .serializers import ReportSerializer


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
