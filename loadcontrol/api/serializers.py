"""Serializers of the command API: a command as listed, a command as requested."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from collection.models import CommandKind, MeterCommand
from meters import configuration as config

from ..drift import STATE_LABELS
from ..models import BulkCommand, LoadSchedule, LoadSlot, Recurrence


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


class BulkCommandSerializer(serializers.ModelSerializer):
    """A bulk command as listed: what, for how many meters, chosen how, who decided."""

    size = serializers.IntegerField(read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", default="", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", default="", read_only=True)
    cancelled_by = serializers.CharField(source="cancelled_by.username", default="", read_only=True)

    class Meta:
        model = BulkCommand
        fields = [
            "id",
            "kind",
            "size",
            "target",
            "reason",
            "state",
            "requested_by",
            "created_at",
            "decided_by",
            "decided_at",
            "cancelled_by",
            "cancelled_at",
        ]
        read_only_fields = fields


class SelectionSerializer(serializers.Serializer):
    """Exactly one way of choosing the meters (loadcontrol/selection.py)."""

    meters = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=10_000,
    )
    node = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    tariff = serializers.CharField(
        max_length=32,
        required=False,
        help_text="a customer group: the meters of the customers on this tariff code",
    )
    filter = serializers.DictField(
        child=serializers.CharField(max_length=100), required=False, allow_empty=False
    )


class BulkRequestSerializer(SelectionSerializer):
    kind = serializers.ChoiceField(choices=CommandKind.choices)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    count = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="the number of meters you confirmed (from preview); another number is 409",
    )


class BulkPreviewSerializer(serializers.Serializer):
    """What a bulk request would do: the meters it is for, whether it waits for approval."""

    count = serializers.IntegerField()
    label = serializers.CharField()
    needs_approval = serializers.BooleanField()
    threshold = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.CharField())


class BulkProgressSerializer(serializers.Serializer):
    """Live figures of a bulk command: its state and its meter commands by state."""

    id = serializers.IntegerField()
    state = serializers.CharField()
    state_label = serializers.CharField()
    size = serializers.IntegerField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class LoadSlotSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoadSlot
        fields = ["id", "starts_at", "ends_at", "state", "started_at", "restored_at"]
        read_only_fields = fields


class LoadScheduleSerializer(serializers.ModelSerializer):
    """A load-control schedule as listed, with its next slots."""

    size = serializers.IntegerField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", default="", read_only=True)
    approved_by = serializers.CharField(source="approved_by.username", default="", read_only=True)
    time_zone = serializers.SerializerMethodField()

    class Meta:
        model = LoadSchedule
        fields = [
            "id",
            "name",
            "size",
            "target",
            "starts_on",
            "at",
            "duration_minutes",
            "recurrence",
            "weekdays",
            "until",
            "time_zone",
            "reason",
            "state",
            "created_by",
            "approved_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_time_zone(self, obj) -> str:
        return settings.TIME_ZONE


class ScheduleRequestSerializer(SelectionSerializer):
    """A new schedule: the meters (one way), local date and time, duration, recurrence."""

    name = serializers.CharField(max_length=100)
    starts_on = serializers.DateField(help_text="first local day")
    at = serializers.TimeField(help_text="local start time (the utility's time zone)")
    duration_minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60)
    recurrence = serializers.ChoiceField(choices=Recurrence.choices, default=Recurrence.ONCE)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, default=list
    )
    until = serializers.DateField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(max_length=2000)
    overlaps_seen = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true once the overlaps (from preview) were seen; else a schedule that "
        "overlaps another is 409 with them",
    )


class SpanSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class OverlapSerializer(serializers.Serializer):
    schedule = serializers.IntegerField()
    name = serializers.CharField()
    meters = serializers.IntegerField(help_text="meters both switch")
    spans = SpanSerializer(many=True)


class SchedulePreviewSerializer(serializers.Serializer):
    """The next two weeks of a schedule before it is saved: its slots, what it overlaps."""

    size = serializers.IntegerField()
    slots = SpanSerializer(many=True)
    overlaps = OverlapSerializer(many=True)
    needs_approval = serializers.BooleanField()


class DriftSectionSerializer(serializers.Serializer):
    """One managed section of a meter: where its desired value comes from and its state."""

    section = serializers.CharField()
    state = serializers.ChoiceField(choices=list(STATE_LABELS.items()))
    source = serializers.ChoiceField(choices=[("meter", "meter"), ("model", "model")])
    desired = serializers.DictField()
    actual = serializers.DictField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)


class DriftRowSerializer(serializers.Serializer):
    """A meter with something desired, and each managed section's state."""

    meter = serializers.IntegerField()
    serial = serializers.CharField()
    meter_model = serializers.IntegerField()
    sections = DriftSectionSerializer(many=True)


class ReapplyRequestSerializer(SelectionSerializer):
    sections = serializers.ListField(
        child=serializers.ChoiceField(choices=list(config.SECTIONS)),
        required=False,
        allow_empty=False,
        help_text="only these sections (default: every managed one)",
    )
    only_drifting = serializers.BooleanField(
        required=False,
        default=True,
        help_text="only sections that differ or were never read (false: every desired one)",
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    count = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="the number of meters you confirmed; another number (or none) is 409 with "
        "the count and the commands it would queue",
    )


class ReapplyPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="meters chosen")
    commands = serializers.IntegerField(help_text="commands re-applying would queue")
    label = serializers.CharField()
    sample = serializers.ListField(child=serializers.CharField())


class ReapplyResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="meters chosen")
    commands = serializers.IntegerField(help_text="commands queued")
