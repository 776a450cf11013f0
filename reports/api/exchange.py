"""The file exchange log's API (`/api/exchange-logs/`): every file written to or read from the
exchange targets of the user's organisations (reports/exchange/), read-only, newest first,
paged by cursor (the log grows while it is read), filtered by target, direction, state,
document and day, searched by file name and summary."""

from __future__ import annotations

from rest_framework import filters, serializers

from accounts.api.filters import ScopedFilterBackend
from amisite.pagination import CursorPaging

from ..models import ExchangeLog
from .engine import ReadOnlyScoped


class ExchangeLogSerializer(serializers.ModelSerializer):
    target_name = serializers.CharField(source="target.name", read_only=True)

    class Meta:
        model = ExchangeLog
        fields = [
            "id", "target", "target_name", "organisation", "direction", "document", "day",
            "filename", "state", "attempts", "size", "sha256", "rows", "summary", "report",
            "remote_name", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class ExchangeLogViewSet(ReadOnlyScoped):
    """Files exchanged with third parties (CIM exports and MeterConfig imports): state,
    size, SHA-256, rows, attempts and, for a rejected import, its report."""

    queryset = ExchangeLog.objects.select_related("target")
    serializer_class = ExchangeLogSerializer
    pagination_class = CursorPaging
    # No ordering parameter: a cursor needs one fixed order (newest first).
    filter_backends = [ScopedFilterBackend, filters.SearchFilter]
    filterset_fields = ["target", "direction", "state", "document", "day"]
    search_fields = ["filename", "summary"]
