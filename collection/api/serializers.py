"""Serializers of the collection API: read jobs, runs, per-meter results, read requests."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.base import ScopedRelatedField
from accounts.models import Organisation
from meters.models import GridNode, Meter, MeterModel
from meters.store.days import parse_moment

from ..choices import ReadItem
from ..models import JobRun, MeterReadResult, ReadJob
from ..scheduling import parse_crontab


class ReadItemsField(serializers.ListField):
    child = serializers.ChoiceField(choices=ReadItem.choices)

    def __init__(self, **kwargs):
        super().__init__(allow_empty=False, **kwargs)


class ReadJobSerializer(serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="view")
    grid_node = ScopedRelatedField(queryset=GridNode.objects.all(), allow_null=True, required=False)
    meter_model = ScopedRelatedField(
        queryset=MeterModel.objects.all(), allow_null=True, required=False
    )
    meters = ScopedRelatedField(queryset=Meter.objects.all(), many=True, required=False)
    items = ReadItemsField()

    class Meta:
        model = ReadJob
        fields = [
            "id",
            "name",
            "organisation",
            "items",
            "grid_node",
            "meter_model",
            "meters",
            "meter_status",
            "crontab",
            "every_minutes",
            "window_minutes",
            "backfill_days",
            "batch_size",
            "concurrency",
            "retries",
            "retry_backoff_s",
            "clock_drift_limit_s",
            "sync_clock",
            "clock_max_adjust_s",
            "enabled",
        ]

    def validate_crontab(self, value):
        try:
            parse_crontab(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value

    def validate(self, attrs):
        organisation = attrs.get("organisation") or getattr(self.instance, "organisation", None)
        node = attrs.get("grid_node")
        if (
            node is not None
            and organisation is not None
            and not node.organisation.path.startswith(organisation.path)
        ):
            raise serializers.ValidationError(
                {"grid_node": "The grid node is outside the job's organisation."}
            )
        return attrs


class FrameSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    direction = serializers.ChoiceField(choices=["tx", "rx"])
    data = serializers.CharField(help_text="the frame, hex")


class MeterReadResultSerializer(serializers.ModelSerializer):
    serial = serializers.CharField(source="meter.serial", read_only=True)
    frames = serializers.SerializerMethodField(
        help_text="a failed session's raw exchange, oldest first (as on the run page)"
    )

    @extend_schema_field(FrameSerializer(many=True))
    def get_frames(self, obj) -> list[dict]:
        frames = []
        for line in (obj.exchange_log or "").splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3:
                frames.append({"at": parts[0], "direction": parts[1], "data": parts[2]})
        return frames

    class Meta:
        model = MeterReadResult
        fields = [
            "id",
            "meter",
            "serial",
            "status",
            "attempts",
            "error_kind",
            "error",
            "retryable",
            "values_stored",
            "started_at",
            "finished_at",
            "data",
            "frames",
        ]


class JobRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobRun
        fields = [
            "id",
            "job",
            "organisation",
            "kind",
            "items",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "since",
            "until",
            "total",
            "done",
            "succeeded",
            "failed",
            "values_stored",
            "error",
        ]
        read_only_fields = fields


class ReadRequestSerializer(serializers.Serializer):
    items = ReadItemsField()
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"since": "since must be before until"})
        return attrs


class PeriodField(serializers.CharField):
    """An ISO datetime (naive: UTC) or a date: its midnight in the utility's time zone (as
    `end`, the midnight ending it, so since=until=<day> is that whole local day)."""

    def __init__(self, *, end: bool = False, **kwargs):
        self.end = end
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            return parse_moment(text, end=self.end)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class RereadSerializer(serializers.Serializer):
    """A period to read again: profile and events by default."""

    since = PeriodField()
    until = PeriodField(end=True)
    items = ReadItemsField(required=False)


class MeterRereadSerializer(RereadSerializer):
    meters = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=5000, help_text="meter ids"
    )
