"""Serializers of the command API: a command as listed, a command as requested."""

from __future__ import annotations

from rest_framework import serializers

from collection.models import CommandKind, MeterCommand


class CommandSerializer(serializers.ModelSerializer):
    meter_serial = serializers.CharField(source="meter.serial", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", default="", read_only=True)

    class Meta:
        model = MeterCommand
        fields = [
            "id",
            "meter",
            "meter_serial",
            "kind",
            "parameters",
            "state",
            "priority",
            "reason",
            "requested_by",
            "created_at",
            "expires_at",
            "sent_at",
            "finished_at",
            "attempts",
            "max_attempts",
            "answer",
            "error_kind",
            "error",
        ]
        read_only_fields = fields


class CommandRequestSerializer(serializers.Serializer):
    meter = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    kind = serializers.ChoiceField(choices=CommandKind.choices)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    emergency = serializers.BooleanField(required=False, default=False)
    parameters = serializers.DictField(required=False, default=dict)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
