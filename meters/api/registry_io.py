"""API of the registry file: POST /api/meters/import/ and GET /api/meters/export/?format=.

Both take `what`: `meters` (the default) or `catalogue` (meter models with their channels).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import actions

from ..registry_io import (
    CONTENT_TYPES,
    FORMATS,
    catalogue_export_response,
    export_response,
    import_catalogue,
    import_registry,
)

TRUE = {"1", "true", "yes", "on"}
WHAT = ("meters", "catalogue")


def _what(request) -> str:
    """`what` from the query string or form; anything unknown is refused by the view."""
    value = request.query_params.get("what")
    if value is None and request.method == "POST":
        value = request.data.get("what")
    return (value or "meters").strip().lower()


class _Perm(permissions.BasePermission):
    perms: tuple[str, ...] = ()
    catalogue_perms: tuple[str, ...] = ()

    def has_permission(self, request, view):
        user = request.user
        perms = self.catalogue_perms if _what(request) == "catalogue" else self.perms
        allowed = bool(user and user.is_authenticated) and any(user.has_perm(p) for p in perms)
        if not allowed and user and user.is_authenticated:
            actions.record_denied(user, f"api_{request.method.lower()}", detail=request.path)
        return allowed


class CanImport(_Perm):
    perms = ("meters.add_meter", "meters.change_meter")
    catalogue_perms = ("meters.add_metermodel", "meters.change_metermodel")


class CanExport(_Perm):
    perms = ("meters.view_meter",)
    catalogue_perms = ("meters.view_metermodel",)


class _JsonOnly:
    # `?format=csv` names the export format, not a DRF renderer: negotiate JSON always.
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        renderer = JSONRenderer()
        return renderer, renderer.media_type


def _bad_what(what: str) -> Response:
    return Response(
        {"detail": f"unknown 'what' {what!r}: use one of {', '.join(WHAT)}"},
        status=status.HTTP_400_BAD_REQUEST,
    )


class RegistryImportView(_JsonOnly, APIView):
    """Import a registry (or catalogue) file; 200 with the summary, or 400 with row errors."""

    permission_classes = [permissions.IsAuthenticated, CanImport]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "RegistryImportRequest",
                {
                    "file": serializers.FileField(),
                    "format": serializers.ChoiceField(choices=FORMATS, required=False),
                    "dry_run": serializers.BooleanField(required=False),
                    "what": serializers.ChoiceField(
                        choices=WHAT,
                        required=False,
                        help_text="meters (default) or catalogue: meter models with their "
                        "channels, one row per channel",
                    ),
                },
            )
        },
        parameters=[
            OpenApiParameter(
                "what", str, enum=list(WHAT), required=False, description="as the form field"
            )
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            return Response({"detail": "send the file as multipart field 'file'"}, status=400)
        what = _what(request)
        if what not in WHAT:
            return _bad_what(what)
        dry_run = str(request.data.get("dry_run", "")).strip().lower() in TRUE
        run = import_catalogue if what == "catalogue" else import_registry
        result = run(upload, request.data.get("format") or None, request.user, dry_run=dry_run)
        code = status.HTTP_200_OK if result.ok else status.HTTP_400_BAD_REQUEST
        return Response(result.as_dict(), status=code)


class RegistryExportView(_JsonOnly, APIView):
    """The user's meters as a CSV, XLSX or XML file (filters `q` and `status` as the list).

    With `what=catalogue`: the meter models the user may see, one row per channel.
    """

    permission_classes = [permissions.IsAuthenticated, CanExport]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(FORMATS), default="csv"),
            OpenApiParameter(
                "what",
                str,
                enum=list(WHAT),
                default="meters",
                description="meters, or catalogue: meter models with their channels",
            ),
            OpenApiParameter("q", str, required=False),
            OpenApiParameter("status", str, required=False),
        ],
        responses={
            (200, media_type.split(";")[0]): OpenApiTypes.BINARY
            for media_type in CONTENT_TYPES.values()
        },
    )
    def get(self, request):
        fmt = request.query_params.get("format", "csv").lower()
        if fmt not in FORMATS:
            return Response(
                {"detail": f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        what = _what(request)
        if what not in WHAT:
            return _bad_what(what)
        if what == "catalogue":
            return catalogue_export_response(request.user, fmt)
        return export_response(request.user, fmt, request.query_params)
