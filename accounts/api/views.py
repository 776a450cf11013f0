"""Organisations and users, each confined to the caller's organisation subtree."""

from axes.handlers.proxy import AxesProxyHandler
from django.db import transaction
from rest_framework import mixins, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import actions, roles, two_factor
from accounts.models import ActivityLog, ApiToken, Organisation, User
from accounts.tokens import CUSTOMER_REFUSED, TokenAuthentication, issue_token, revoke_token

from .base import ModelPermissions, ScopedModelViewSet
from .serializers import OrganisationSerializer, UserSerializer


class OrganisationViewSet(ScopedModelViewSet):
    queryset = Organisation.objects.all()
    serializer_class = OrganisationSerializer
    search_fields = ["name", "code"]
    ordering_fields = ["path", "name", "code"]
    filterset_fields = ["parent"]

    def perform_create(self, serializer):
        # The one organisation-creating action, so a new one gets its default alarm rules.
        with transaction.atomic():
            organisation = Organisation(**serializer.validated_data)
            try:
                actions.create_organisation(organisation, acting_user=self.request.user)
            except actions.OutOfScope as exc:
                raise ApiPermissionDenied(str(exc)) from None
            serializer.instance = organisation


class UserViewSet(ScopedModelViewSet):
    queryset = User.objects.prefetch_related("groups")
    serializer_class = UserSerializer
    search_fields = ["username", "first_name", "last_name", "email"]
    ordering_fields = ["username", "last_login"]
    filterset_fields = ["organisation", "is_active"]


class ActivityLogSerializer(drf_serializers.ModelSerializer):
    class Meta:
        model = ActivityLog
        fields = [
            "id",
            "at",
            "username",
            "organisation",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "ip_address",
            "outcome",
            "detail",
        ]


class ActivityLogViewSet(viewsets.ReadOnlyModelViewSet):
    """The activity log, searchable; nobody can change it through any door."""

    serializer_class = ActivityLogSerializer
    permission_classes = [ModelPermissions]
    search_fields = ["username", "object_repr", "detail", "action"]
    ordering_fields = ["at"]
    filterset_fields = ["action", "outcome", "object_type", "object_id", "username"]

    def get_queryset(self):
        return ActivityLog.objects.restrict(self.request.user, "view")


LOCKED = "locked: too many failed sign-ins; try again later"


class TokenView(APIView):
    """POST username and password, get a token; says "locked" while sign-ins are locked.

    Staff and administrators also send `otp`, a code of their authenticator.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    serializer_class = AuthTokenSerializer

    def post(self, request):
        credentials = {"username": str(request.data.get("username", ""))}
        django_request = request._request
        if AxesProxyHandler.is_locked(django_request, credentials):
            return Response({"detail": LOCKED}, status=status.HTTP_403_FORBIDDEN)
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        if roles.is_customer(user):
            return Response({"detail": CUSTOMER_REFUSED}, status=status.HTTP_403_FORBIDDEN)
        if two_factor.required(user):
            # Staff and administrators: the password alone issues no token.
            if two_factor.device_of(user) is None:
                return Response(
                    {"detail": "set up your second factor first: /account/two-factor/enrol/"},
                    status=status.HTTP_403_FORBIDDEN,
                )
            if not two_factor.verify(user, str(request.data.get("otp", ""))):
                return Response(
                    {"detail": "send `otp`: the code of your authenticator (or a recovery code)"},
                    status=status.HTTP_403_FORBIDDEN,
                )
        token, key = issue_token(user, name=str(request.data.get("name", "")))
        return Response({"token": key, "id": token.pk, "expires_at": token.expires_at})

    def delete(self, request):
        """Sign out from the API: revoke the token this request was made with."""
        if not isinstance(request.auth, ApiToken):
            return Response({"detail": "send the token to revoke"}, status=400)
        revoke_token(request.auth, acting_user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_authenticators(self):
        # POST signs in (no authentication); DELETE needs the token it revokes.
        if getattr(self, "request", None) is not None and self.request.method == "DELETE":
            return [TokenAuthentication()]
        return super().get_authenticators()


class ApiTokenSerializer(drf_serializers.ModelSerializer):
    active = drf_serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at"]
        fields += ["revoked_at", "active"]
        read_only_fields = fields


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens; DELETE revokes one. Nobody sees or revokes another's."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    def destroy(self, request, *args, **kwargs):
        revoke_token(self.get_object(), acting_user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    destroy.__doc__ = "Revoke one of your tokens."
