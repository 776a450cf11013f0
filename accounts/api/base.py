"""Base classes every API viewset and serializer uses, so scoping cannot be forgotten."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.response import Response

from accounts import actions, audit

METHOD_ACTION = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


class ModelPermissions(permissions.DjangoModelPermissions):
    """Role permissions per method, reading included (a customer may not list meters)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view):
        allowed = super().has_permission(request, view)
        if not allowed and request.user.is_authenticated and request.method not in ("GET", "HEAD"):
            actions.record_denied(
                request.user, f"api_{request.method.lower()}", detail=request.path
            )
        return allowed


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key a user may only point at objects within their scope (others: 'not found')."""

    def __init__(self, *, action: str = "view", **kwargs):
        self.scope_action = action
        super().__init__(**kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None:
            return queryset.none()
        return queryset.restrict(request.user, self.scope_action)


class ScopedModelViewSet(viewsets.ModelViewSet):
    """CRUD through `restrict(user, action)`: out of scope is 404; every write is audited."""

    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    queryset_base = None  # set by subclasses: Model.objects (possibly with select_related)

    def get_queryset(self):
        action = METHOD_ACTION.get(self.request.method, "view")
        # Writes on an object first need it visible; the write scope is re-checked on save.
        base = self.queryset_base if self.queryset_base is not None else self.queryset
        return base.all().restrict(self.request.user, "view" if action == "add" else action)

    def perform_create(self, serializer):
        with transaction.atomic():
            obj = serializer.save()
            self._recheck(obj, None)

    def get_object(self):
        obj = super().get_object()
        self._before = audit.snapshot(obj)  # taken before validation touches anything
        return obj

    def perform_update(self, serializer):
        before = getattr(self, "_before", None) or audit.snapshot(serializer.instance)
        with transaction.atomic():
            obj = serializer.save()
            self._recheck(obj, before)

    def _recheck(self, obj, before):
        try:
            actions.record_saved(obj, acting_user=self.request.user, before=before)
        except actions.OutOfScope as exc:
            raise ApiPermissionDenied(str(exc)) from None

    def perform_destroy(self, instance):
        actions.delete_object(instance, acting_user=self.request.user)

    def destroy(self, request, *args, **kwargs):
        try:
            return super().destroy(request, *args, **kwargs)
        except ProtectedError as exc:
            names = sorted({str(o) for o in list(exc.protected_objects)[:5]})
            return Response(
                {"detail": f"Still in use by: {', '.join(names)}. Remove those first."},
                status=status.HTTP_409_CONFLICT,
            )
