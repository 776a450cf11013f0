"""The report engine's API: definitions (every save a version), their versions, runs (queued
by `POST .../run/`, the file by `GET .../download/`), schedules and the delivery log.

Everything is scoped like the pages: a definition belongs to an organisation, and its
versions, runs, schedules and deliveries follow it.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts import audit
from accounts.api.base import ModelPermissions, ScopedModelViewSet, ScopedRelatedField
from accounts.models import Organisation, User
from meters.coverage import NODE_OUTSIDE, node_outside
from meters.models import GridNode, MeterModel

from .. import actions, engine
from ..definition_views import run_file_response
from ..models import (
    PeriodKind,
    ReportDefinition,
    ReportDelivery,
    ReportRun,
    ReportSchedule,
    ReportVersion,
    RunFormat,
    ScheduleFrequency,
)


class ReportDefinitionSerializer(serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="view")
    node = ScopedRelatedField(
        queryset=GridNode.objects.all(), action="view", allow_null=True, required=False
    )
    meter_model = ScopedRelatedField(
        queryset=MeterModel.objects.all(), action="view", allow_null=True, required=False
    )
    source = serializers.ChoiceField(choices=engine.source_choices())
    period = serializers.ChoiceField(choices=PeriodKind.choices, required=False)
    columns = serializers.ListField(child=serializers.CharField(), required=False)
    quantities = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text="the data query's quantities (OBIS codes); other reports take none",
    )

    class Meta:
        model = ReportDefinition
        fields = [
            "id", "name", "organisation", "description", "source", "node", "meter_model",
            "customer_class", "grouping", "columns", "quantities", "period", "period_from",
            "period_to", "graph", "version", "builtin", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["version", "builtin", "created_at", "updated_at"]

    def validate(self, attrs):
        merged = {name: getattr(self.instance, name) for name in self.Meta.fields
                  if self.instance is not None and hasattr(self.instance, name)}  # fmt: skip
        merged.update(attrs)
        if node_outside(merged.get("node"), merged.get("organisation")):
            raise serializers.ValidationError({"node": NODE_OUTSIDE})
        if merged.get("source") and not self.context["request"].user.has_perm(
            engine.SOURCES[merged["source"]].permission
        ):
            raise serializers.ValidationError({"source": "You may not see this report's figures."})
        problems = engine.problems({**merged, "period": merged.get("period") or "last_month"})
        if problems:
            raise serializers.ValidationError(problems)
        return attrs

    def create(self, validated_data):
        definition = ReportDefinition(**validated_data)
        actions.save_definition(definition, self.context["request"].user)
        return definition

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        actions.save_definition(instance, self.context["request"].user)
        return instance


class RunRequestSerializer(serializers.Serializer):
    fmt = serializers.ChoiceField(choices=RunFormat.choices)


class ReportRunSerializer(serializers.ModelSerializer):
    version_number = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = ReportRun
        fields = [
            "id", "definition", "version", "version_number", "organisation", "schedule",
            "requested_by", "fmt", "status", "first_day", "last_day", "rows_done", "size",
            "error", "created_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReportDefinitionViewSet(ScopedModelViewSet):
    """Stored report definitions; every create or change is a new version."""

    queryset = ReportDefinition.objects.select_related("organisation")
    serializer_class = ReportDefinitionSerializer
    filterset_fields = ["organisation", "source", "period"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at", "source"]

    def perform_create(self, serializer):
        with transaction.atomic():
            obj = serializer.save(created_by=self.request.user)
            self._recheck(obj, None)

    def perform_destroy(self, instance):
        with transaction.atomic():
            tasks = [s.periodic_task for s in instance.schedules.all() if s.periodic_task]
            super().perform_destroy(instance)
            for task in tasks:
                task.delete()

    @extend_schema(request=RunRequestSerializer, responses={202: ReportRunSerializer})
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def run(self, request, pk=None):
        """Run the definition's current version into a file in the background (202); follow
        it at /api/report-runs/{id}/ and fetch it from .../download/."""
        definition = self.get_object()
        if not request.user.has_perm("reports.add_reportrun"):
            raise PermissionDenied("You may not run reports.")
        body = RunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = actions.queue_run(definition, request.user, body.validated_data["fmt"])
        audit.record(
            "export", user=request.user, obj=definition,
            detail=f"report {definition.name} v{definition.version} "
            f"{run.fmt}, run {run.pk} (API)",
        )  # fmt: skip
        return Response(ReportRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ReportVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReportVersion
        fields = ["id", "definition", "number", "snapshot", "saved_by", "saved_at"]
        read_only_fields = fields


class ReadOnlyScoped(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]

    def get_queryset(self):
        return self.queryset.all().restrict(self.request.user, "view")


class ReportVersionViewSet(ReadOnlyScoped):
    """Every saved version of the definitions in scope (what a run used)."""

    queryset = ReportVersion.objects.all()
    serializer_class = ReportVersionSerializer
    filterset_fields = ["definition"]
    ordering_fields = ["number", "saved_at"]


class ReportRunViewSet(ReadOnlyScoped):
    """Runs of the definitions in scope: status, progress, the file when ready."""

    queryset = ReportRun.objects.select_related("version")
    serializer_class = ReportRunSerializer
    filterset_fields = ["definition", "schedule", "status", "fmt"]
    ordering_fields = ["created_at"]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The run's file (404 until it is ready)."""
        run = self.get_object()
        response = run_file_response(run)
        audit.record("export", user=request.user, obj=run, detail=f"report run {run.pk} (API)")
        return response


class ReportScheduleSerializer(serializers.ModelSerializer):
    definition = ScopedRelatedField(queryset=ReportDefinition.objects.all(), action="view")
    recipients = ScopedRelatedField(queryset=User.objects.all(), action="view", many=True)
    frequency = serializers.ChoiceField(choices=ScheduleFrequency.choices)
    fmt = serializers.ChoiceField(choices=RunFormat.choices)

    class Meta:
        model = ReportSchedule
        fields = [
            "id", "definition", "organisation", "frequency", "at", "weekday", "day_of_month",
            "fmt", "recipients", "enabled", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["organisation", "created_by", "created_at"]

    def validate(self, attrs):
        definition = attrs.get("definition") or self.instance.definition
        recipients = attrs.get("recipients")
        if recipients is None and self.instance is not None:
            recipients = list(self.instance.recipients.all())
        outside = [u.username for u in recipients or []
                   if u.organisation_id != definition.organisation_id]  # fmt: skip
        if outside:
            raise serializers.ValidationError(
                {"recipients": f"Not staff of {definition.organisation}: {', '.join(outside)}."}
            )
        return attrs

    def create(self, validated_data):
        recipients = validated_data.pop("recipients", [])
        return actions.save_schedule(
            ReportSchedule(**validated_data), self.context["request"].user, recipients
        )

    def update(self, instance, validated_data):
        recipients = validated_data.pop("recipients", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return actions.save_schedule(instance, recipients=recipients)


class ReportScheduleViewSet(ScopedModelViewSet):
    """Schedules of definitions: daily, weekly or monthly in the utility's zone, mailed to
    staff of the definition's organisation (a beat entry each)."""

    queryset = ReportSchedule.objects.select_related("definition").prefetch_related("recipients")
    serializer_class = ReportScheduleSerializer
    filterset_fields = ["definition", "frequency", "enabled"]
    ordering_fields = ["id"]

    def perform_destroy(self, instance):
        with transaction.atomic():
            task = instance.periodic_task
            super().perform_destroy(instance)
            if task is not None:
                task.delete()


class ReportDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = ReportDelivery
        fields = [
            "id", "run", "schedule", "recipient", "email", "status", "attached", "attempts",
            "error", "created_at", "sent_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReportDeliveryViewSet(ReadOnlyScoped):
    """The delivery log of scheduled reports: per recipient, sent or failed and why."""

    queryset = ReportDelivery.objects.all()
    serializer_class = ReportDeliverySerializer
    filterset_fields = ["run", "schedule", "status"]
    ordering_fields = ["created_at"]
