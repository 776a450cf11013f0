"""`/api/readings/` and `/api/events/`: the stored readings and event records of every meter
in the caller's scope, for integrations (billing, MDM, analytics) that copy them out.

Both page by key (`amisite.pagination.KeysetPaging`) in the store's own key order, so each
page is read by key after the last key of the page before, and readings that
arrive meanwhile never shift a page:

* readings: interval rows in (meter_id, store group, ts), register reads in (meter_id,
  channel, read_at); the values read through `meters.store.query` (hot and compacted
  months alike), exact decimal strings;
* events: (meter_id, log, ts, code).

A range of local days (`from`, `to`; default the last 7 days up to today, at most 31) bounds
every request. `meter` chooses among the caller's meters only (`ScopedFilterSet`): a foreign
meter's id is answered as one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError

from accounts.api.filters import ScopedFilterBackend, ScopedFilterSet
from amisite.pagination import KeysetPaging, split_page

from ..alarms.events import kind_of
from ..choices import ChannelKind
from ..models import Channel, Meter, MeterModel
from ..obis import normalise as normalise_obis
from ..store import days, query
from ..store.quality import to_decimal
from .series import CanViewMeters

DEFAULT_DAYS = 7
MAX_DAYS = 31
KINDS = (ChannelKind.PROFILE, ChannelKind.REGISTER)


def day_range(params) -> tuple[datetime, datetime]:
    """(start, end] of `from`..`to` (local days or ISO times, as `/api/meters/<id>/series/`
    takes them); 400 naming the parameter when unusable or longer than `MAX_DAYS`."""

    def moment(name: str, *, end: bool):
        text = params.get(name)
        if not text:
            return None
        try:
            return days.parse_moment(text, end=end)
        except ValueError as exc:
            raise ValidationError({name: [str(exc)]}) from None

    end = moment("to", end=True)
    start = moment("from", end=False)
    if end is None:
        today = timezone.localdate(timezone=days.local_zone())
        end = days.day_bounds(today)[1] if start is None else start + timedelta(days=DEFAULT_DAYS)
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ValidationError({"from": ["from must be before to"]})
    # An hour of slack: 31 local days across a DST change are 31 days and an hour.
    if end - start > timedelta(days=MAX_DAYS, hours=1):
        raise ValidationError({"to": [f"at most {MAX_DAYS} days after from"]})
    return start, end


RANGE_PARAMETERS = [
    OpenApiParameter("meter", int, description="one meter of the caller's (id)"),
    OpenApiParameter(
        "from",
        str,
        description=f"first local day (ISO date or time); default {DEFAULT_DAYS} "
        "days before `to`",  # fmt: skip
    ),
    OpenApiParameter(
        "to",
        str,
        description=f"last local day (ISO date or time); default today; at most "
        f"{MAX_DAYS} days after `from`",  # fmt: skip
    ),
]


def utc_text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _key_time(text) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationError({"cursor": "not a cursor this list gave"}) from None


def _one_meter(queryset, name, value):
    return queryset.filter(pk=value.pk)


def _after(key: list | None, kind: str) -> tuple | None:
    """The store key a readings cursor names: (meter, group or channel, time)."""
    if key is None:
        return None
    if len(key) != 4 or key[0] != kind:
        raise ValidationError({"cursor": "not a cursor this list gave"})
    try:
        return int(key[1]), int(key[2]), _key_time(key[3])
    except (TypeError, ValueError):
        raise ValidationError({"cursor": "not a cursor this list gave"}) from None


def _keep(queryset, name, value):
    return queryset  # read by the view itself (declared here for the schema and the form)


class _MeterScoped(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The meters in scope are the queryset; `meter=` narrows them (scoped choice)."""

    queryset = Meter.objects.all()
    permission_classes = [CanViewMeters]
    filter_backends = [ScopedFilterBackend]

    def get_queryset(self):
        return Meter.objects.restrict(self.request.user, "view")

    def meters_and_range(self):
        meters = self.filter_queryset(self.get_queryset())
        return meters, *day_range(self.request.query_params)


@extend_schema_field(OpenApiTypes.INT)
class _MeterChoiceFilter(filters.ModelChoiceFilter):
    """A meter by id. The filterset's own model is the meter, which has no `meter` field for
    the schema generator to take the type from (`manage.py check --deploy` warned)."""


class _MeterFilter(ScopedFilterSet):
    meter = _MeterChoiceFilter(
        queryset=Meter.objects.all(), method=_one_meter, help_text="one meter of the caller's"
    )

    class Meta:
        model = Meter
        fields = ["meter"]


class ReadingFilter(_MeterFilter):
    kind = filters.ChoiceFilter(
        choices=[(k.value, k.label) for k in KINDS],
        method=_keep,
        help_text="profile (stored intervals, default) or register (register reads)",
    )
    obis = filters.CharFilter(method=_keep, help_text="one channel's OBIS code (1-0:1.8.0*255)")

    class Meta(_MeterFilter.Meta):
        fields = ["meter", "kind", "obis"]


OF_METER = {"meter": serializers.IntegerField(), "serial": serializers.CharField()}
READING = inline_serializer(
    "Reading",
    {
        **OF_METER,
        "kind": serializers.ChoiceField(choices=[k.value for k in KINDS]),
        "ts": serializers.DateTimeField(help_text="interval end or read time (UTC)"),
        "capture_time": serializers.DateTimeField(
            allow_null=True, help_text="a maximum demand's time (register reads)"
        ),
        "values": inline_serializer(
            "ReadingValue",
            {
                "obis": serializers.CharField(),
                "unit": serializers.CharField(),
                "value": serializers.CharField(allow_null=True, help_text="exact decimal"),
                "quality": serializers.CharField(help_text="flags: estimated,missing,..."),
            },
            many=True,
        ),
    },
)


@extend_schema(parameters=RANGE_PARAMETERS, responses=READING)
class ReadingViewSet(_MeterScoped):
    """Stored readings of the meters in scope over at most 31 local days, in the store's key
    order, paged by cursor: `kind=profile` (default) one row per meter, store group and
    interval end with its channels' values; `kind=register` one row per register read.
    Values are exact decimal strings in the channel's unit, times ISO UTC."""

    filterset_class = ReadingFilter
    pagination_class = KeysetPaging  # driven by list() itself (one key per kind)

    def list(self, request, *args, **kwargs):
        paging = KeysetPaging("readings")
        meters, start, end = self.meters_and_range()
        kind = request.query_params.get("kind") or ChannelKind.PROFILE
        code = request.query_params.get("obis") or ""
        if code:
            try:
                code = normalise_obis(code)
            except ValueError as exc:
                raise ValidationError({"obis": [str(exc)]}) from None
        key = paging.position(request)
        size = paging.get_page_size(request)
        if kind == ChannelKind.REGISTER:
            rows, last = self._registers(meters, start, end, code, key, size)
        else:
            rows, last = self._profiles(meters, start, end, code, key, size)
        return paging.response(rows, last)

    @staticmethod
    def _channels(meters, kind: str, code: str) -> list[Channel]:
        channels = Channel.objects.filter(
            kind=kind, meter_model_id__in=meters.values("meter_model_id")
        ).order_by("meter_model_id", "profile_group", "profile_column", "pk")
        return list(channels.filter(obis=code) if code else channels)

    @staticmethod
    def _meters(rows) -> dict[int, tuple[str, int]]:
        """{meter id: (serial, meter model id)} of a page's rows (one query)."""
        found = Meter.objects.filter(pk__in={row.meter_id for row in rows})
        return {pk: (serial, model) for pk, serial, model in found.values_list(
            "pk", "serial", "meter_model_id")}  # fmt: skip

    def _profiles(self, meters, start, end, code, key, size):
        after = _after(key, "p")
        channels = self._channels(meters, ChannelKind.PROFILE, code)
        groups: dict[int, set[int]] = {}
        by_group: dict[tuple[int, int], list[Channel]] = {}
        for channel in channels:
            groups.setdefault(channel.meter_model_id, set()).add(channel.profile_group)
            by_group.setdefault((channel.meter_model_id, channel.profile_group), []).append(channel)
        if not channels:
            return [], None
        rows = query.interval_rows_after(
            meters, start, end, after=after, limit=size + 1, groups=groups if code else None
        )
        rows, last = split_page(rows, size)
        meta = self._meters(rows)
        out = []
        for row in rows:
            serial, model_id = meta[row.meter_id]
            values = []
            for channel in by_group.get((model_id, row.group), []):
                value, flags = row.column(channel.profile_column)
                values.append({
                    "obis": channel.obis, "unit": channel.unit,
                    "value": None if value is None else str(to_decimal(value, channel.scaler)),
                    "quality": query.flag_names(flags),
                })  # fmt: skip
            out.append({
                "meter": row.meter_id, "serial": serial, "kind": "profile",
                "ts": utc_text(row.ts), "capture_time": None, "values": values,
            })  # fmt: skip
        return out, (
            None if last is None else ["p", last.meter_id, last.group, last.ts.isoformat()]
        )

    def _registers(self, meters, start, end, code, key, size):
        after = _after(key, "r")
        channels = {c.pk: c for c in self._channels(meters, ChannelKind.REGISTER, code)}
        if not channels:
            return [], None
        rows = query.register_reads_after(
            meters, start, end, after=after, limit=size + 1,
            channel_ids=channels.keys() if code else None,
        )  # fmt: skip
        rows, last = split_page(rows, size)
        meta = self._meters(rows)
        out = []
        for row in rows:
            channel = channels[row.channel_id]
            out.append({
                "meter": row.meter_id, "serial": meta[row.meter_id][0], "kind": "register",
                "ts": utc_text(row.read_at), "capture_time": utc_text(row.capture_time),
                "values": [{
                    "obis": channel.obis, "unit": channel.unit,
                    "value": str(to_decimal(row.value, channel.scaler)),
                    "quality": query.flag_names(row.quality or 0),
                }],
            })  # fmt: skip
        if last is None:
            return out, None
        return out, ["r", last.meter_id, last.channel_id, last.read_at.isoformat()]


class EventFilter(_MeterFilter):
    log = filters.CharFilter(method=_keep, help_text="the event log's OBIS code")
    code = filters.NumberFilter(method=_keep, help_text="the meter's own event code")

    class Meta(_MeterFilter.Meta):
        fields = ["meter", "log", "code"]


EVENT = inline_serializer(
    "MeterEventRecord",
    {
        **OF_METER,
        "log": serializers.CharField(),
        "ts": serializers.DateTimeField(),
        "code": serializers.IntegerField(),
        "kind": serializers.CharField(help_text="the code's meaning (power_failure, ...)"),
        "data": serializers.JSONField(),
    },
)


@extend_schema(parameters=RANGE_PARAMETERS, responses=EVENT)
class EventViewSet(_MeterScoped):
    """Event records of the meters in scope over at most 31 local days, in the store's key
    order (meter, log, time, code) -- not newest first -- paged by cursor."""

    filterset_class = EventFilter
    pagination_class = KeysetPaging

    def list(self, request, *args, **kwargs):
        paging = KeysetPaging("events")
        meters, start, end = self.meters_and_range()
        key = paging.position(request)
        size = paging.get_page_size(request)
        after = None
        if key is not None:
            if len(key) != 4:
                raise ValidationError({"cursor": "not a cursor this list gave"})
            after = (int(key[0]), str(key[1]), _key_time(key[2]), int(key[3]))
        code = request.query_params.get("code") or ""
        if code and not code.removeprefix("-").isdigit():
            raise ValidationError({"code": ["a whole number"]})
        rows = query.events_after(
            meters, start, end, after=after, limit=size + 1,
            log=request.query_params.get("log") or "",
            code=int(code) if code else None,
        )  # fmt: skip
        rows, last = split_page(rows, size)
        found = Meter.objects.filter(pk__in={r.meter_id for r in rows})
        meta = {m.pk: m for m in found.only("pk", "serial", "meter_model_id")}
        models = MeterModel.objects.in_bulk({m.meter_model_id for m in meta.values()})
        out = [{
            "meter": r.meter_id, "serial": meta[r.meter_id].serial, "log": r.log,
            "ts": utc_text(r.ts), "code": r.code,
            "kind": kind_of(r.code, r.log, models.get(meta[r.meter_id].meter_model_id)),
            "data": r.data,
        } for r in rows]  # fmt: skip
        if last is None:
            return paging.response(out, None)
        return paging.response(out, [last.meter_id, last.log, last.ts.isoformat(), last.code])
