"""Collection API: read jobs (CRUD), runs and their results (read), on-demand reads."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import ModelPermissions, ScopedModelViewSet
from meters.models import Meter

from .. import actions, scheduling
from ..models import JobRun, ReadJob
from .serializers import (
    JobRunSerializer,
    MeterReadResultSerializer,
    ReadJobSerializer,
    ReadRequestSerializer,
)


class ReadJobViewSet(ScopedModelViewSet):
    queryset = ReadJob.objects.all()
    serializer_class = ReadJobSerializer
    filterset_fields = ["organisation", "enabled"]
    search_fields = ["name"]
    ordering_fields = ["name"]

    def perform_create(self, serializer):
        with transaction.atomic():
            super().perform_create(serializer)
            scheduling.sync_schedule(serializer.instance)

    def perform_update(self, serializer):
        with transaction.atomic():
            super().perform_update(serializer)
            scheduling.sync_schedule(serializer.instance)

    def perform_destroy(self, instance):
        with transaction.atomic():
            scheduling.drop_schedule(instance)
            super().perform_destroy(instance)

    @extend_schema(request=None, responses={202: JobRunSerializer})
    @action(detail=True, methods=["post"], url_path="run")
    def run_now(self, request, pk=None):
        """Start a run of this job now (needs the right to add runs)."""
        if not request.user.has_perm("collection.add_jobrun"):
            return Response({"detail": "You may not start runs."}, status=status.HTTP_403_FORBIDDEN)
        job = self.get_object()
        run = actions.start_run(job, kind="manual", acting_user=request.user)
        return Response(JobRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class JobRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs with their progress; `results` lists each meter's outcome."""

    serializer_class = JobRunSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset = JobRun.objects.all()
    filterset_fields = ["job", "status", "kind"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return JobRun.objects.restrict(self.request.user, "view")

    @extend_schema(responses=MeterReadResultSerializer(many=True))
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        run = self.get_object()
        page = self.paginate_queryset(run.results.select_related("meter").order_by("meter__serial"))
        return self.get_paginated_response(MeterReadResultSerializer(page, many=True).data)


class MeterReadView(APIView):
    """Read one meter now: clock, registers, profile, events, instantaneous values, relay."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ReadRequestSerializer, responses={202: JobRunSerializer})
    def post(self, request, pk: int):
        meter = get_object_or_404(Meter.objects.restrict(request.user, "view"), pk=pk)
        if not request.user.has_perm("collection.add_jobrun"):
            return Response(
                {"detail": "You may not read meters on demand."}, status=status.HTTP_403_FORBIDDEN
            )
        serializer = ReadRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = actions.request_on_demand_read(
            meter,
            serializer.validated_data["items"],
            acting_user=request.user,
            since=serializer.validated_data.get("since"),
            until=serializer.validated_data.get("until"),
        )
        return Response(JobRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
