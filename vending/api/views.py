"""Vending API: catalogue and accounts (CRUD), shifts, sales, payments, management tokens.

Every viewset is a `ScopedModelViewSet` (organisation scope, plus the station for clerks);
state changes call `vending.actions`. A refused operation answers with its reason:
422 (cannot be sold as asked), 503 (the token engine cannot issue now) or 409 (an
idempotency key reused for another payment), and leaves nothing behind.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import ScopedModelViewSet
from accounts.scoping import org_within_scope

from .. import actions, receipts
from ..errors import VendingError
from ..models import (
    ManagementOrder,
    PrepaidAccount,
    Sale,
    Shift,
    Tariff,
    VendingKey,
    VendingStation,
)
from ..scoping import is_supervisor
from . import serializers


def refused(exc: VendingError) -> Response:
    return Response({"detail": str(exc), "code": exc.code}, status=exc.http_status)


def sale_response(sale: Sale, created: bool) -> Response:
    """201 for a new sale; 200 and `Idempotent-Replayed: true` for one recorded before."""
    return Response(
        serializers.SaleSerializer(sale).data,
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        headers={"Idempotent-Replayed": "false" if created else "true"},
    )


class SupervisorWrites(permissions.BasePermission):
    """Catalogue, keys and accounts are changed by supervisors, not by clerks who sell."""

    message = "only a vending supervisor may change this"

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or is_supervisor(request.user)


class VendingStationViewSet(ScopedModelViewSet):
    queryset = VendingStation.objects.all()
    serializer_class = serializers.VendingStationSerializer
    permission_classes = ScopedModelViewSet.permission_classes + [SupervisorWrites]
    filterset_fields = ["organisation", "kind", "active"]
    search_fields = ["code", "name", "location"]


class VendingKeyViewSet(ScopedModelViewSet):
    """Vending keys: written once, shown only as `key_set`; the value never leaves the server."""

    queryset = VendingKey.objects.all()
    serializer_class = serializers.VendingKeySerializer
    permission_classes = ScopedModelViewSet.permission_classes + [SupervisorWrites]
    filterset_fields = ["organisation", "sgc", "krn"]


class TariffViewSet(ScopedModelViewSet):
    queryset = Tariff.objects.prefetch_related("blocks")
    serializer_class = serializers.TariffSerializer
    permission_classes = ScopedModelViewSet.permission_classes + [SupervisorWrites]
    filterset_fields = ["organisation", "kind", "currency", "active"]
    search_fields = ["code", "name"]


class PrepaidAccountViewSet(ScopedModelViewSet):
    queryset = PrepaidAccount.objects.select_related("customer", "meter", "tariff")
    serializer_class = serializers.PrepaidAccountSerializer
    permission_classes = ScopedModelViewSet.permission_classes + [SupervisorWrites]
    filterset_fields = ["tariff", "active", "sgc", "customer", "meter"]
    search_fields = ["meter_number", "pan", "customer__account_number", "customer__name"]

    @extend_schema(request=serializers.DebtAdjustmentSerializer, responses=None)
    @action(detail=True, methods=["post"], url_path="adjust-debt")
    def adjust_debt(self, request, pk=None):
        account = self.get_object()
        body = serializers.DebtAdjustmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            account = actions.adjust_debt(
                account, body.validated_data["change"], acting_user=request.user,
                reason=body.validated_data["reason"],
            )  # fmt: skip
        except VendingError as exc:
            return refused(exc)
        return Response(self.get_serializer(account).data)


class ShiftViewSet(ScopedModelViewSet):
    """A clerk opens a shift (POST with the station) and closes it with the cash counted."""

    queryset = Shift.objects.select_related("station", "clerk")
    serializer_class = serializers.ShiftSerializer
    http_method_names = ["get", "post", "head", "options"]
    filterset_fields = ["station", "status"]

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            shift = actions.open_shift(
                body.validated_data["station"], acting_user=request.user,
                opening_float=body.validated_data.get("opening_float", 0),
            )  # fmt: skip
        except VendingError as exc:
            return refused(exc)
        return Response(self.get_serializer(shift).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.CloseShiftSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        shift = self.get_object()
        body = serializers.CloseShiftSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            shift = actions.close_shift(
                shift, cash_counted=body.validated_data["cash_counted"],
                note=body.validated_data["note"], acting_user=request.user,
            )  # fmt: skip
        except VendingError as exc:
            return refused(exc)
        return Response(self.get_serializer(shift).data)


class SaleViewSet(ScopedModelViewSet):
    """Sales: list, show, sell at the counter (POST), reverse, reprint, receipts."""

    queryset = Sale.objects.select_related(
        "account__customer", "station", "sold_by", "tariff", "organisation", "reversal"
    ).prefetch_related("tokens")
    serializer_class = serializers.SaleSerializer
    http_method_names = ["get", "post", "head", "options"]
    filterset_fields = ["station", "shift", "status", "channel", "account", "tariff"]
    search_fields = ["account__meter_number", "payment_reference", "account__customer__name"]
    ordering_fields = ["created_at", "amount_paid"]

    def get_serializer_class(self):
        return (
            serializers.CounterSaleSerializer
            if self.action == "create"
            else super().get_serializer_class()
        )

    @extend_schema(request=serializers.CounterSaleSerializer, responses=serializers.SaleSerializer)
    def create(self, request, *args, **kwargs):
        body = serializers.CounterSaleSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        shift = Shift.objects.filter(clerk=request.user, status="open").first()
        try:
            sale = actions.sell(
                data["account"], data["amount"], acting_user=request.user, shift=shift,
                currency=data.get("currency"), payment_reference=data["payment_reference"],
            )  # fmt: skip
        except VendingError as exc:
            return refused(exc)
        return Response(serializers.SaleSerializer(sale).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.ReverseSerializer, responses=serializers.SaleSerializer)
    @action(detail=True, methods=["post"])
    def reverse(self, request, pk=None):
        sale = self.get_object()
        body = serializers.ReverseSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        try:
            actions.reverse_sale(sale, acting_user=request.user, **body.validated_data)
        except VendingError as exc:
            return refused(exc)
        return Response(serializers.SaleSerializer(Sale.objects.get(pk=sale.pk)).data)

    @extend_schema(request=None, responses=serializers.SaleSerializer)
    @action(detail=True, methods=["post"])
    def reprint(self, request, pk=None):
        sale = actions.record_reprint(self.get_object(), acting_user=request.user)
        data = serializers.SaleSerializer(sale).data
        return Response({**data, "receipt_text": receipts.text_receipt(sale)})

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["txt", "pdf"])],
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            (200, "application/pdf"): OpenApiTypes.BINARY,
        },
    )
    @action(detail=True, methods=["get"], url_path=r"receipt\.(?P<fmt>txt|pdf)")
    def receipt(self, request, pk=None, fmt="txt"):
        sale = self.get_object()
        if fmt == "pdf":
            response = HttpResponse(receipts.pdf_receipt(sale), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="receipt-{sale.reference}.pdf"'
            return response
        return HttpResponse(receipts.text_receipt(sale), content_type="text/plain; charset=utf-8")


class ManagementOrderViewSet(ScopedModelViewSet):
    """Management tokens (power limit, clear tamper, clear credit, key change) for a meter."""

    queryset = ManagementOrder.objects.select_related("account", "issued_by").prefetch_related(
        "tokens"
    )
    serializer_class = serializers.ManagementOrderSerializer
    http_method_names = ["get", "post", "head", "options"]
    filterset_fields = ["account", "purpose"]

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        account = data.pop("account")
        purpose = data.pop("purpose")
        try:
            order = actions.issue_management_tokens(
                account, purpose, acting_user=request.user, **data
            )
        except VendingError as exc:
            return refused(exc)
        return Response(self.get_serializer(order).data, status=status.HTTP_201_CREATED)


class PaymentPermission(permissions.BasePermission):
    """A payment creates a sale: the caller needs `vending.add_sale`."""

    def has_permission(self, request, view):
        return request.user.has_perm("vending.add_sale")


class PaymentView(APIView):
    """Third-party payment: credit a meter and return its token, exactly once per key.

    Only a payment system's own identity pays, at the integration station it is bound to
    (403 for anyone else: clerks sell at the counter in an open shift).

    Send the key in the `Idempotency-Key` header (or the `idempotency_key` field). The
    same key with the same payload returns the same sale and token (200); with another
    payload, 409. A payment that cannot complete answers 422/503 and consumes nothing.
    """

    permission_classes = [permissions.IsAuthenticated, PaymentPermission]

    @extend_schema(
        request=serializers.PaymentSerializer,
        responses=serializers.SaleSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def post(self, request):
        body = serializers.PaymentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        key = request.headers.get("Idempotency-Key") or data.get("idempotency_key")
        if not key:
            return Response(
                {"detail": "send an Idempotency-Key header (or idempotency_key field)"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        longest = Sale._meta.get_field("idempotency_key").max_length
        if len(key) > longest:
            return Response(
                {"detail": f"the Idempotency-Key is longer than {longest} characters"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if data.get("idempotency_key") and data["idempotency_key"] != key:
            return Response(
                {"detail": "the Idempotency-Key header and field differ"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        account = self._account(request, data)
        try:
            sale, created = actions.pay(
                account, data["amount"], currency=data["currency"],
                payment_reference=data["payment_reference"], idempotency_key=key,
                acting_user=request.user,
            )  # fmt: skip
        except VendingError as exc:
            return refused(exc)
        except PermissionDenied:
            raise NotFound() from None
        return sale_response(sale, created)

    def _account(self, request, data) -> PrepaidAccount:
        # Payments need the account visible and its organisation writable; otherwise 404.
        visible = PrepaidAccount.objects.restrict(request.user, "view").select_related(
            "organisation"
        )
        wanted = Q()
        if data.get("meter_number"):
            number = data["meter_number"].replace(" ", "")
            wanted &= Q(meter_number=number) | Q(pan=number)
        if data.get("account_number"):
            wanted &= Q(customer__account_number=data["account_number"])
        matches = list(visible.filter(wanted)[:2])
        if not matches:
            raise NotFound("no prepaid account matches")
        if len(matches) > 1:
            raise ValidationError({"meter_number": "the customer has several meters: give one"})
        account = matches[0]
        if not org_within_scope(request.user, account.organisation, "add"):
            raise NotFound()
        return account


class OfflineSaleView(APIView):
    """Upload a sale a station made offline: its original time, TID and token, checked.

    201 with the recorded sale; the same station and `offline_reference` again returns it
    (200); with other figures, 409. A refused upload (422) records nothing and says why:
    a time in the future, a TID out of order or used, a token that does not decode with
    the meter's key, a sale before the meter's last key change.
    """

    permission_classes = [permissions.IsAuthenticated, PaymentPermission]

    @extend_schema(request=serializers.OfflineSaleSerializer, responses=serializers.SaleSerializer)
    def post(self, request):
        body = serializers.OfflineSaleSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        number = data.pop("meter_number").replace(" ", "")
        account = (
            PrepaidAccount.objects.restrict(request.user, "view")
            .filter(Q(meter_number=number) | Q(pan=number))
            .select_related("organisation")
            .first()
        )
        if account is None:
            raise NotFound("no prepaid account matches")
        try:
            sale, created = actions.record_offline_sale(account, acting_user=request.user, **data)
        except VendingError as exc:
            return refused(exc)
        except PermissionDenied:
            raise NotFound() from None
        return sale_response(sale, created)
