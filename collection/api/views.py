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
    MeterRereadSerializer,
    ReadJobSerializer,
    ReadRequestSerializer,
    RereadSerializer,
)


def _reread(request, *, job=None, meters=None, data) -> Response:
    try:
        run = actions.reread_period(
            since=data["since"],
            until=data["until"],
            items=data.get("items"),
            job=job,
            meters=meters,
            acting_user=request.user,
        )
    except actions.BadPeriod as exc:
        return Response({"since": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    return Response(JobRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


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

    @extend_schema(request=RereadSerializer, responses={202: JobRunSerializer})
    @action(detail=True, methods=["post"], url_path="reread")
    def reread(self, request, pk=None):
        """Read a named period again for this job's meters (profile and events by default;
        dates mean midnight in the utility's time zone). The store's merge rules apply."""
        if not request.user.has_perm("collection.add_jobrun"):
            return Response({"detail": "You may not start runs."}, status=status.HTTP_403_FORBIDDEN)
        job = self.get_object()
        serializer = RereadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _reread(request, job=job, data=serializer.validated_data)


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


class MeterRereadView(APIView):
    """Read a named period again for a set of meters (ids in the caller's scope)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=MeterRereadSerializer, responses={202: JobRunSerializer})
    def post(self, request):
        if not request.user.has_perm("collection.add_jobrun"):
            return Response({"detail": "You may not start runs."}, status=status.HTTP_403_FORBIDDEN)
        serializer = MeterRereadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wanted = set(serializer.validated_data["meters"])
        meters = Meter.objects.restrict(request.user, "view").filter(pk__in=wanted)
        if meters.count() != len(wanted):  # out of scope looks like absent: 404, not 403
            return Response({"detail": "No such meters."}, status=status.HTTP_404_NOT_FOUND)
        return _reread(request, meters=meters, data=serializer.validated_data)
