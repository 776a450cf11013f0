"""Alarm API: alarms (read, acknowledge, clear), outages, rules, subscriptions, deliveries.

Scoping is the base classes' (`restrict(user, action)`); subscriptions are each user's own.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import actions as account_actions
from accounts.api.base import ModelPermissions, ScopedModelViewSet, ScopedRelatedField
from accounts.api.filters import ScopedFilterSet
from accounts.models import Organisation

from ..api.serializers import ModelCleanMixin
from ..models import GridNode, MeterModel
from . import actions as alarm_actions
from .engine import outage_summary
from .events import EventKind
from .models import (
    Alarm,
    AlarmRule,
    AlarmState,
    AlarmSubscription,
    NotificationDelivery,
    Severity,
)


class AlarmSerializer(serializers.ModelSerializer):
    meter_serial = serializers.CharField(source="meter.serial", read_only=True, allow_null=True)
    subject = serializers.CharField(
        read_only=True,
        help_text='what the alarm is on: "meter 90000001", "line DC-A11" or, for a system '
        'alarm (neither), its reference ("report delivery 12 to ops@example.com")',
    )
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    last_event = serializers.CharField(read_only=True, help_text="the latest event's name")
    # Nullable: an alarm nobody has acknowledged or cleared yet (the schema says so).
    acknowledged_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    cleared_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Alarm
        fields = [
            "id",
            "rule",
            "meter",
            "meter_serial",
            "line",
            "subject",
            "reference",
            "link",
            "organisation",
            "service_point",
            "kind",
            "kind_label",
            "severity",
            "state",
            "count",
            "first_event_at",
            "last_event_at",
            "last_code",
            "last_event",
            "raised_at",
            "acknowledged_at",
            "acknowledged_by",
            "ack_comment",
            "cleared_at",
            "cleared_by",
            "clear_comment",
        ]
        read_only_fields = fields


class AlarmCommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AlarmFilter(ScopedFilterSet):
    state = django_filters.MultipleChoiceFilter(choices=AlarmState.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    min_severity = django_filters.NumberFilter(field_name="severity", lookup_expr="gte")
    kind = django_filters.MultipleChoiceFilter(choices=EventKind.choices)
    grid_node = django_filters.NumberFilter(method="below_node", label="grid node (subtree)")

    class Meta:
        model = Alarm
        fields = ["state", "severity", "kind", "meter", "rule", "organisation"]

    def below_node(self, queryset, name, value):
        node = GridNode.objects.restrict(self.request.user, "view").filter(pk=value).first()
        if node is None:
            return queryset.none()
        return queryset.filter(service_point__path__startswith=node.path)


class MayChangeAlarms(permissions.BasePermission):
    """Acknowledging and clearing need the role's right to change alarms."""

    def has_permission(self, request, view):
        if request.user.has_perm("meters.change_alarm"):
            return True
        account_actions.record_denied(request.user, "alarm_action", detail=request.path)
        return False


class OutageNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    off = serializers.IntegerField()
    total = serializers.IntegerField()
    since = serializers.DateTimeField()


class OutageSerializer(serializers.Serializer):
    meters_off = serializers.IntegerField()
    transformers = OutageNodeSerializer(many=True)
    feeders = OutageNodeSerializer(many=True)


class AlarmViewSet(viewsets.ReadOnlyModelViewSet):
    """Alarms in your scope, newest first; acknowledge and clear them."""

    serializer_class = AlarmSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset = Alarm.objects.all()
    filterset_class = AlarmFilter
    search_fields = ["meter__serial", "service_point__code"]
    ordering_fields = ["last_event_at", "first_event_at", "severity", "count"]

    def get_queryset(self):
        return (
            Alarm.objects.restrict(self.request.user, "view")
            .select_related("meter__meter_model", "line", "acknowledged_by", "cleared_by")
            .order_by("-last_event_at", "-pk")
        )

    def _transition(self, request, verb):
        alarm = self.get_object()
        body = AlarmCommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            alarm = verb(
                alarm, acting_user=request.user, comment=body.validated_data.get("comment", "")
            )
        except alarm_actions.AlarmStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except PermissionDenied as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        return Response(AlarmSerializer(alarm).data)

    @extend_schema(request=AlarmCommentSerializer, responses=AlarmSerializer)
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[permissions.IsAuthenticated, MayChangeAlarms],
    )
    def acknowledge(self, request, pk=None):
        """Acknowledge a raised alarm, with an optional comment."""
        return self._transition(request, alarm_actions.acknowledge_alarm)

    @extend_schema(request=AlarmCommentSerializer, responses=AlarmSerializer)
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[permissions.IsAuthenticated, MayChangeAlarms],
    )
    def clear(self, request, pk=None):
        """Clear an open alarm by hand, with an optional comment."""
        return self._transition(request, alarm_actions.clear_alarm)

    @extend_schema(responses=OutageSerializer)
    @action(detail=False, methods=["get"])
    def outages(self, request):
        """Meters off (open power-failure alarms) per transformer and feeder."""
        return Response(OutageSerializer(outage_summary(request.user)).data)


class AlarmRuleSerializer(ModelCleanMixin, serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="view")
    grid_node = ScopedRelatedField(
        queryset=GridNode.objects.all(), action="view", allow_null=True, required=False
    )
    meter_model = ScopedRelatedField(
        queryset=MeterModel.objects.all(), action="view", allow_null=True, required=False
    )
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=EventKind.choices))

    class Meta:
        model = AlarmRule
        fields = [
            "id",
            "name",
            "organisation",
            "kinds",
            "grid_node",
            "meter_model",
            "severity",
            "dedup_window_s",
            "subtree",
            "default_key",
            "active",
        ]
        read_only_fields = ["default_key"]


class AlarmRuleViewSet(ScopedModelViewSet):
    queryset = AlarmRule.objects.select_related("organisation")
    serializer_class = AlarmRuleSerializer
    filterset_fields = ["organisation", "severity", "active", "grid_node", "meter_model"]
    search_fields = ["name"]
    ordering_fields = ["name", "severity"]


class AlarmSubscriptionSerializer(ModelCleanMixin, serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="view")
    grid_node = ScopedRelatedField(
        queryset=GridNode.objects.all(), action="view", allow_null=True, required=False
    )
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=EventKind.choices), required=False
    )

    class Meta:
        model = AlarmSubscription
        fields = [
            "id",
            "organisation",
            "grid_node",
            "kinds",
            "min_severity",
            "by_email",
            "by_sms",
            "email",
            "phone",
            "quiet_start",
            "quiet_end",
            "timezone",
            "critical_overrides_quiet",
            "active",
        ]

    def validate(self, attrs):
        # clean() needs the owner; the owner is always the requesting user.
        request = self.context["request"]
        if self.instance is None:
            attrs["user"] = request.user
        return super().validate(attrs)


class AlarmSubscriptionViewSet(ScopedModelViewSet):
    """Your own alarm subscriptions (e-mail / SMS), within your scope."""

    queryset = AlarmSubscription.objects.select_related("organisation")
    serializer_class = AlarmSubscriptionSerializer
    filterset_fields = ["organisation", "active", "by_email", "by_sms"]
    ordering_fields = ["id"]


class NotificationDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationDelivery
        fields = [
            "id",
            "alarm",
            "subscription",
            "customer",
            "user",
            "channel",
            "recipient",
            "subject",
            "body",
            "status",
            "attempts",
            "last_error",
            "gateway_id",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields


class NotificationDeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """The delivery log: every message planned, and what became of it."""

    serializer_class = NotificationDeliverySerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset = NotificationDelivery.objects.all()
    filterset_fields = ["alarm", "channel", "status", "user"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return NotificationDelivery.objects.restrict(self.request.user, "view").order_by(
            "-created_at", "-pk"
        )
