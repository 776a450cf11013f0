"""Command API: list and read commands in scope, queue one, cancel a queued one."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import ModelPermissions
from collection.commands.actions import NotCancellable
from collection.commands.kinds import BadCommand
from collection.models import MeterCommand
from meters.models import DesiredConfiguration, Meter

from .. import actions, configuration, drift, schedules, selection
from ..models import BulkCommand, LoadSchedule
from .serializers import (
    BulkCommandSerializer,
    BulkPreviewSerializer,
    BulkProgressSerializer,
    BulkRequestSerializer,
    CancelSerializer,
    CommandRequestSerializer,
    CommandSerializer,
    DecisionSerializer,
    DriftRowSerializer,
    LoadScheduleSerializer,
    LoadSlotSerializer,
    ReapplyPreviewSerializer,
    ReapplyRequestSerializer,
    ReapplyResultSerializer,
    SchedulePreviewSerializer,
    ScheduleRequestSerializer,
    SelectionSerializer,
)


class CommandViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Meter commands (connect, disconnect, relay read, clock set) and their progress."""

    serializer_class = CommandSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset = MeterCommand.objects.all()
    filterset_fields = ["state", "kind", "meter"]
    ordering_fields = ["created_at", "priority"]

    def get_queryset(self):
        action = "change" if self.action == "cancel" else "view"
        return MeterCommand.objects.restrict(self.request.user, action).select_related(
            "meter", "requested_by"
        )

    @extend_schema(request=CommandRequestSerializer, responses={202: CommandSerializer})
    def create(self, request, *args, **kwargs):
        """Queue a command for one meter; connect and disconnect need a reason."""
        serializer = CommandRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        meter = get_object_or_404(Meter.objects.restrict(request.user, "view"), pk=data["meter"])
        try:
            command = actions.request_command(
                meter,
                data["kind"],
                acting_user=request.user,
                reason=data["reason"],
                emergency=data["emergency"],
                parameters=data["parameters"],
            )
        except actions.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except BadCommand as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(CommandSerializer(command).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=CancelSerializer, responses={200: CommandSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a command that is still queued (409 once it is sent or finished)."""
        command = self.get_object()
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            command = actions.cancel(
                command, acting_user=request.user, reason=serializer.validated_data["reason"]
            )
        except NotCancellable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(CommandSerializer(command).data)


class BulkCommandViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One command for many meters: a set of meters, a grid subtree or the meter list's filter.

    `preview` says how many meters a request is for; `create` needs that `count` back (another
    number, because the selection changed meanwhile, is 409 with the new count). Above
    `AMI_COMMAND_APPROVAL_THRESHOLD` meters it waits until a second person approves it.
    """

    serializer_class = BulkCommandSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset = BulkCommand.objects.all()
    filterset_fields = ["state", "kind"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        action = "view" if self.action in ("list", "retrieve", "progress") else "change"
        return BulkCommand.objects.restrict(self.request.user, action).select_related(
            "requested_by", "decided_by", "cancelled_by"
        )

    def _selection(self, data):
        return selection.choose(
            self.request.user,
            meters=data.get("meters"),
            node=data.get("node"),
            tariff=data.get("tariff"),
            filters=data.get("filter"),
        )

    @extend_schema(request=SelectionSerializer, responses={200: BulkPreviewSerializer})
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """How many meters a selection is (nothing is queued): confirm it with `count`."""
        serializer = SelectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            chosen = self._selection(serializer.validated_data)
        except BadCommand as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(chosen.preview())

    @extend_schema(
        request=BulkRequestSerializer,
        responses={201: BulkCommandSerializer, 409: BulkPreviewSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Request a bulk command: queued at once up to the threshold, else pending approval.
        Connect, disconnect and ready-for-reconnection need a reason."""
        serializer = BulkRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            chosen = self._selection(data)
            preview = chosen.preview()
            if data.get("count") != preview["count"]:
                return Response(
                    {"detail": f"confirm the count: {preview['count']} meters", **preview},
                    status=status.HTTP_409_CONFLICT,
                )
            bulk = actions.request_bulk(
                chosen.for_request(),
                data["kind"],
                acting_user=request.user,
                reason=data["reason"],
                target=chosen.target,
            )
        except actions.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except BadCommand as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(BulkCommandSerializer(bulk).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: BulkProgressSerializer})
    @action(detail=True, methods=["get"])
    def progress(self, request, pk=None):
        """The bulk command's state and how many of its commands are in each state."""
        return Response(actions.bulk_progress(self.get_object()))

    def _decide(self, decide, extra=lambda data: {}):
        bulk = self.get_object()
        serializer = DecisionSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        try:
            decide(bulk, acting_user=self.request.user, **extra(serializer.validated_data))
        except actions.Conflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except actions.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        bulk.refresh_from_db()
        return Response(BulkCommandSerializer(bulk).data)

    @extend_schema(request=DecisionSerializer, responses={200: BulkCommandSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """A second person approves a pending bulk command: its commands are queued (403 for
        its requester or a role that may not send it, 409 once decided)."""
        return self._decide(actions.approve_bulk)

    @extend_schema(request=DecisionSerializer, responses={200: BulkCommandSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """A second person turns a pending bulk command down: nothing is queued."""
        return self._decide(actions.reject_bulk, extra=lambda data: {"reason": data["reason"]})

    @extend_schema(request=DecisionSerializer, responses={200: BulkCommandSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop a bulk command: pending, never queued; approved, what is still queued is
        cancelled (sent commands finish). 409 when nothing is left to stop."""
        return self._decide(actions.cancel_bulk, extra=lambda data: {"reason": data["reason"]})


def _spans(spans) -> list[dict]:
    return [{"starts_at": start, "ends_at": end} for start, end in spans]


def schedule_preview(schedule) -> dict:
    """schedules.preview in the API's shape (BadCommand when the rule does not fit)."""
    found = schedules.preview(schedule)
    return {
        "size": found["size"],
        "slots": _spans(found["slots"]),
        "overlaps": [{**o, "spans": _spans(o["spans"])} for o in found["overlaps"]],
        "needs_approval": found["size"] > settings.AMI_COMMAND_APPROVAL_THRESHOLD,
    }


class LoadScheduleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    http_method_names = ["get", "post", "put", "head", "options"]  # no PATCH: a whole rule
    """Scheduled load control: a meter set, a grid subtree or a filter result off from a local
    date and time for a duration, once, daily or weekly, restored at the end. `preview` shows
    its slots and the schedules it overlaps; `create` refuses an overlap not yet seen (409)."""

    serializer_class = LoadScheduleSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset = LoadSchedule.objects.all()
    filterset_fields = ["state"]
    ordering_fields = ["created_at", "starts_on"]

    def get_queryset(self):
        action = "view" if self.action in ("list", "retrieve", "slots") else "change"
        return LoadSchedule.objects.restrict(self.request.user, action).select_related(
            "created_by", "approved_by"
        )

    def _unsaved(self, data) -> LoadSchedule:
        chosen = selection.choose(
            self.request.user,
            meters=data.get("meters"),
            node=data.get("node"),
            tariff=data.get("tariff"),
            filters=data.get("filter"),
        )
        return schedules.unsaved(chosen, data)

    @extend_schema(request=ScheduleRequestSerializer, responses={200: SchedulePreviewSerializer})
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """The schedule's slots in the next two weeks and the schedules it overlaps (nothing
        is saved)."""
        serializer = ScheduleRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            return Response(schedule_preview(self._unsaved(serializer.validated_data)))
        except BadCommand as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)

    @extend_schema(
        request=ScheduleRequestSerializer,
        responses={201: LoadScheduleSerializer, 409: SchedulePreviewSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Save a schedule (active, or pending a second person's approval above the
        threshold). An overlap with another schedule must have been seen: `overlaps_seen`."""
        serializer = ScheduleRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            schedule = self._unsaved(data)
            shown = schedule_preview(schedule)
            if shown["overlaps"] and not data["overlaps_seen"]:
                return Response(
                    {
                        "detail": "it overlaps other schedules: see them, then overlaps_seen",
                        **shown,
                    },
                    status=status.HTTP_409_CONFLICT,
                )
            schedule = schedules.create_schedule(schedule, acting_user=request.user)
        except actions.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except BadCommand as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(LoadScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ScheduleRequestSerializer,
        responses={200: LoadScheduleSerializer, 409: SchedulePreviewSerializer},
    )
    def update(self, request, *args, **kwargs):
        """Change a schedule (the whole request, as for `create`; 409 once cancelled). Its
        overlaps are shown again: an overlap not seen (`overlaps_seen`) is 409 with the
        preview. Planned slots follow the new rule; a slot on now ends as it was planned."""
        schedule = self.get_object()
        serializer = ScheduleRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            edited = self._unsaved(data)
            edited.pk = schedule.pk
            shown = schedule_preview(edited)
            if shown["overlaps"] and not data["overlaps_seen"]:
                return Response(
                    {
                        "detail": "it overlaps other schedules: see them, then overlaps_seen",
                        **shown,
                    },
                    status=status.HTTP_409_CONFLICT,
                )
            schedule = schedules.update_schedule(schedule, edited, acting_user=request.user)
        except actions.Conflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except actions.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except BadCommand as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(LoadScheduleSerializer(schedule).data)

    @extend_schema(responses={200: LoadSlotSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def slots(self, request, pk=None):
        """The schedule's planned and past slots (planned two days ahead), newest last."""
        slots = self.get_object().slots.order_by("-starts_at")[:200]
        return Response(LoadSlotSerializer(reversed(list(slots)), many=True).data)

    def _decide(self, decide):
        schedule = self.get_object()
        try:
            schedule = decide(schedule, acting_user=self.request.user)
        except actions.Conflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except actions.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        return Response(LoadScheduleSerializer(schedule).data)

    @extend_schema(request=None, responses={200: LoadScheduleSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """A second person approves a pending schedule (not its author)."""
        return self._decide(schedules.approve_schedule)

    @extend_schema(request=None, responses={200: LoadScheduleSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """No more slots; a slot that is on now ends now and its meters are restored."""
        return self._decide(schedules.cancel_schedule)


MAX_DRIFT_SELECTION = 10_000  # meters one drift request looks at (as the page)


class ConfigurationDriftViewSet(viewsets.GenericViewSet):
    """The drift report: meters in scope with something desired and each managed section's
    state (filters as the page: `section`, `state` (`drifting`: differs or never read),
    `model`, `grid`, `meter` (serial contains)); `reapply` queues, as commands, what drifted.

    Reading needs `meters.view_desiredconfiguration`; re-applying, the engineer's
    `meters.add_desiredconfiguration` and change scope over every chosen meter's
    organisation (403, nothing queued)."""

    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset = DesiredConfiguration.objects.all()  # the model the permissions are of
    serializer_class = DriftRowSerializer

    def _meters(self):
        return Meter.objects.restrict(self.request.user, "view")

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, description=text)
            for name, text in (
                ("section", "one section"),
                ("state", "drifting, in_step, differs, unread or pending"),
                ("model", "meter model id"),
                ("grid", "grid node id: its subtree"),
                ("meter", "serial contains"),
            )
        ]
    )
    def list(self, request):
        chosen, meters = drift.select(request.user, self._meters(), request.query_params)
        rows = drift.drift_report(
            meters[:MAX_DRIFT_SELECTION], section=chosen["section"], state=chosen["state"]
        )
        page = self.paginate_queryset(rows)
        data = [
            {
                "meter": meter.pk,
                "serial": meter.serial,
                "meter_model": meter.meter_model_id,
                "sections": [
                    {
                        "section": s.section,
                        "state": s.state,
                        "source": s.source,
                        "desired": s.desired,
                        "actual": s.actual,
                        "read_at": s.read_at,
                    }
                    for s in states
                    if s.state
                ],
            }
            for meter, states in page
        ]
        return self.get_paginated_response(DriftRowSerializer(data, many=True).data)

    @extend_schema(
        request=ReapplyRequestSerializer,
        responses={202: ReapplyResultSerializer, 409: ReapplyPreviewSerializer},
    )
    @action(detail=False, methods=["post"])
    def reapply(self, request):
        """Re-apply the desired configuration of the chosen meters (`meters`, `node` or
        `filter`, as a bulk command): one command per section that differs or was never
        read (`only_drifting`, default), of `sections` (default all). Without the confirmed
        `count` of meters, 409 says the count and the commands it would queue."""
        serializer = ReapplyRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            chosen = selection.choose(
                request.user,
                meters=data.get("meters"),
                node=data.get("node"),
                tariff=data.get("tariff"),
                filters=data.get("filter"),
            )
        except BadCommand as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        meters = list(chosen.meters.select_related("organisation").order_by("pk"))
        if len(meters) > MAX_DRIFT_SELECTION:
            detail = f"at most {MAX_DRIFT_SELECTION} meters at once, not {len(meters)}"
            return Response({"meters": [detail]}, status=status.HTTP_400_BAD_REQUEST)
        sections = data.get("sections")
        only = data["only_drifting"]
        if data.get("count") != len(meters):
            plan = configuration.plan_reapply(meters, sections=sections, only_drifting=only)
            preview = chosen.preview()
            return Response(
                {
                    "detail": f"confirm the count: {len(meters)} meters",
                    "count": len(meters),
                    "commands": sum(len(group) for group in plan.values()),
                    "label": preview["label"],
                    "sample": preview["sample"],
                },
                status=status.HTTP_409_CONFLICT,
            )
        try:
            queued = configuration.reapply(
                meters,
                acting_user=request.user,
                sections=sections,
                only_drifting=only,
                reason=data["reason"],
                target=chosen.target,
            )
        except actions.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        return Response({"count": len(meters), "commands": queued}, status=status.HTTP_202_ACCEPTED)
