"""`/api/meters/<id>/series/`: one meter's channels over a range, for the meter page's graph."""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from ..choices import ChannelKind
from ..models import Meter
from ..store import days, query

DEFAULT_SPAN = timedelta(days=7)
MAX_CHANNELS = 8


class CanViewMeters(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.user.has_perm("meters.view_meter")


def parse_moment(text: str | None, *, end: bool = False):
    """`meters.store.days.parse_moment` with the API's error (400 naming the parameter)."""
    if not text:
        return None
    try:
        return days.parse_moment(text, end=end)
    except ValueError as exc:
        raise ValidationError({"end" if end else "start": str(exc)}) from None


def time_range(params) -> tuple:
    end = parse_moment(params.get("end"), end=True) or timezone.now()
    start = parse_moment(params.get("start")) or end - DEFAULT_SPAN
    if start >= end:
        raise ValidationError({"start": "start must be before end"})
    return start, end


_point_list = serializers.ListField(child=serializers.CharField(allow_null=True))
SERIES_RESPONSE = inline_serializer(
    "MeterSeries",
    {
        "meter": inline_serializer(
            "MeterSeriesMeter",
            {"id": serializers.IntegerField(), "serial": serializers.CharField()},
        ),
        "start": serializers.DateTimeField(),
        "end": serializers.DateTimeField(),
        "resolution": serializers.ChoiceField(choices=query.RESOLUTIONS),
        "requested_resolution": serializers.CharField(),
        "channels": inline_serializer(
            "MeterSeriesChannel",
            {
                "obis": serializers.CharField(),
                "name": serializers.CharField(),
                "unit": serializers.CharField(),
                "kind": serializers.CharField(),
                "head_end_derived": serializers.BooleanField(
                    help_text="values the head-end made from register polls (no meter profile)"
                ),
                "aggregate": serializers.CharField(allow_null=True, help_text="sum, mean, last"),
                "timestamps": serializers.ListField(child=serializers.DateTimeField()),
                "values": _point_list,
                "quality": serializers.ListField(
                    child=serializers.IntegerField(), help_text="meters.store.Quality bits"
                ),
                "counts": serializers.ListField(
                    child=serializers.IntegerField(allow_null=True),
                    help_text="values per bucket (aggregates)",
                ),
            },
            many=True,
        ),
    },
)


class MeterSeriesView(APIView):
    """Time series of one meter's profile and register channels, downsampled for long ranges."""

    permission_classes = [permissions.IsAuthenticated, CanViewMeters]

    @extend_schema(
        operation_id="meters_series",
        summary="A meter's channels over a time range",
        description=(
            "Values as decimal strings with their quality flags (bits of meters.store.Quality: "
            "1 estimated, 2 edited, 4 missing, 8 clock suspect, 16 power down, 32 spike, "
            "64 negative, 128 invalid). `resolution=auto` (default) gives raw intervals up to "
            "14 days, hourly buckets up to 92 days, daily up to 3 years, monthly beyond; raw "
            "over more than 35 days is answered hourly. Aggregated buckets are labelled by "
            "their local start; energy is summed, other quantities averaged, registers give "
            "their last read. A meter outside the caller's scope is 404."
        ),
        parameters=[
            OpenApiParameter(
                "channels",
                OpenApiTypes.STR,
                description=(
                    "channels, comma separated: an OBIS code, or `register:CODE` / "
                    "`profile:CODE` naming the kind. A bare code shared by a profile and a "
                    "register channel means the profile one; `profile:1-0:1.29.0*255` also "
                    "finds a cumulative profile channel of the same energy (1-0:1.8.0*255)."
                ),
            ),
            OpenApiParameter(
                "start",
                OpenApiTypes.STR,
                description="ISO datetime (naive: UTC), or a date: its midnight in the "
                "utility's time zone",
            ),
            OpenApiParameter(
                "end",
                OpenApiTypes.STR,
                description="ISO datetime, or a date: the midnight ending that day "
                "(start=end=<day> is the whole local day, 23 or 25 hours across DST)",
            ),
            OpenApiParameter("resolution", OpenApiTypes.STR, enum=[query.AUTO, *query.RESOLUTIONS]),
        ],
        responses={200: SERIES_RESPONSE},
        tags=["meters"],
    )
    def get(self, request, pk: int):
        meter = get_object_or_404(Meter.objects.restrict(request.user, "view"), pk=pk)
        start, end = time_range(request.query_params)
        requested = request.query_params.get("resolution") or query.AUTO
        if requested not in (query.AUTO, *query.RESOLUTIONS):
            raise ValidationError({"resolution": f"one of auto, {', '.join(query.RESOLUTIONS)}"})
        channels = meter_channels(meter, request.query_params.get("channels", ""))
        resolution = query.choose_resolution(requested, start, end)
        start, end = query.bucket_range(start, end, resolution)
        out = []
        for channel in channels:
            points = list(query.series(meter.pk, channel, start, end, resolution))
            out.append(
                {
                    "obis": channel.obis,
                    "name": channel.name,
                    "unit": channel.unit,
                    "kind": channel.kind,
                    "head_end_derived": channel.head_end_derived,
                    "aggregate": query.aggregate_of(channel, resolution),
                    "timestamps": [p.ts.isoformat() for p in points],
                    "values": [None if p.value is None else str(p.value) for p in points],
                    "quality": [p.flags for p in points],
                    "counts": [p.count for p in points],
                }
            )
        return Response(
            {
                "meter": {"id": meter.pk, "serial": meter.serial},
                "start": start.isoformat(),
                "end": end.isoformat(),
                "resolution": resolution,
                "requested_resolution": requested,
                "channels": out,
            }
        )


def meter_channels(meter: Meter, text: str):
    """The meter model's channels named in `text` (default: every profile channel)."""
    available = query.queryable_channels([meter.meter_model_id])
    wanted = query.parse_channels(text)
    if not wanted:
        return list(available.filter(kind=ChannelKind.PROFILE)[:MAX_CHANNELS])
    chosen = query.resolve_channels(available, wanted)
    if not chosen:
        raise ValidationError({"channels": "none of these channels belong to the meter's model"})
    return chosen[:MAX_CHANNELS]
