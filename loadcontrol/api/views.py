"""Command API: list and read commands in scope, queue one, cancel a queued one."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import ModelPermissions
from collection.commands.actions import NotCancellable
from collection.commands.kinds import BadCommand
from collection.models import MeterCommand
from meters.models import Meter

from .. import actions
from .serializers import CancelSerializer, CommandRequestSerializer, CommandSerializer


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
