"""Serializers of the collection API: read jobs, runs, per-meter results, read requests."""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.base import ScopedRelatedField
from accounts.models import Organisation
from meters.models import GridNode, Meter, MeterModel

from ..choices import ReadItem
from ..models import JobRun, MeterReadResult, ReadJob


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
        from ..scheduling import parse_crontab

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


class MeterReadResultSerializer(serializers.ModelSerializer):
    serial = serializers.CharField(source="meter.serial", read_only=True)

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
