"""Serializers of the vending API; vending keys are write-only and never echoed."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework import serializers

from accounts.api.base import ScopedRelatedField
from accounts.models import Organisation, User
from meters.models import Customer, Meter

from ..choices import MANAGEMENT_PURPOSES, BaseDate
from ..models import (
    ManagementOrder,
    PrepaidAccount,
    Sale,
    SaleReversal,
    Shift,
    Tariff,
    TariffBlock,
    Token,
    VendingKey,
    VendingStation,
)

MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0.01")}


class ModelCleanMixin:
    """Run the model's clean() so the API enforces what the admin enforces."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance or self.Meta.model()
        for key, value in attrs.items():
            if not isinstance(getattr(type(instance), key, None), property):
                setattr(instance, key, value)
        try:
            instance.clean()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class VendingStationSerializer(serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="change")
    clerks = ScopedRelatedField(queryset=User.objects.all(), many=True, required=False)

    class Meta:
        model = VendingStation
        fields = ["id", "organisation", "code", "name", "location", "kind", "clerks", "active"]


class VendingKeySerializer(ModelCleanMixin, serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="change")
    key = serializers.CharField(write_only=True, style={"input_type": "password"})
    key_set = serializers.SerializerMethodField()

    class Meta:
        model = VendingKey
        fields = ["id", "organisation", "sgc", "krn", "label", "key", "key_set", "created_at"]
        read_only_fields = ["created_at"]

    def get_key_set(self, obj) -> bool:
        return bool(obj.key)


class TariffBlockSerializer(serializers.ModelSerializer):
    class Meta:
        model = TariffBlock
        fields = ["up_to_kwh", "price_per_kwh"]


class TariffSerializer(serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="change")
    blocks = TariffBlockSerializer(many=True, required=False)

    class Meta:
        model = Tariff
        fields = ["id", "organisation", "code", "name", "kind", "currency", "price_per_kwh",
                  "fixed_charge_monthly", "tax_percent", "debt_recovery_percent",
                  "min_energy_percent", "fixed_charge_shortfall_to_debt",
                  "accrue_missed_fixed_charges", "reversal_window_days", "active",
                  "blocks"]  # fmt: skip

    def validate(self, attrs):
        attrs = super().validate(attrs)
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        blocks = attrs.get("blocks")
        if kind == "block" and blocks is not None:
            open_ended = [b for b in blocks if b.get("up_to_kwh") is None]
            if len(open_ended) != 1:
                raise serializers.ValidationError(
                    {"blocks": "A block tariff needs exactly one open-ended last block."}
                )
        return attrs

    def create(self, validated_data):
        blocks = validated_data.pop("blocks", [])
        with transaction.atomic():
            tariff = super().create(validated_data)
            for block in blocks:
                TariffBlock.objects.create(tariff=tariff, **block)
        return tariff

    def update(self, instance, validated_data):
        blocks = validated_data.pop("blocks", None)
        with transaction.atomic():
            tariff = super().update(instance, validated_data)
            if blocks is not None:
                tariff.blocks.all().delete()
                for block in blocks:
                    TariffBlock.objects.create(tariff=tariff, **block)
        return tariff


class PrepaidAccountSerializer(ModelCleanMixin, serializers.ModelSerializer):
    customer = ScopedRelatedField(queryset=Customer.objects.all(), action="view")
    meter = ScopedRelatedField(queryset=Meter.objects.all(), action="view")
    tariff = ScopedRelatedField(queryset=Tariff.objects.all(), action="view")

    class Meta:
        model = PrepaidAccount
        fields = ["id", "organisation", "customer", "meter", "service_point", "tariff",
                  "meter_number", "pan", "sgc", "krn", "ti", "key_type", "ea", "dkga",
                  "base_date", "last_tid", "debt_balance", "credit_balance",
                  "fixed_charge_billed_until", "active", "created_at"]  # fmt: skip
        read_only_fields = ["organisation", "service_point", "pan", "last_tid",
                            "debt_balance", "credit_balance", "fixed_charge_billed_until",
                            "created_at"]  # fmt: skip


class TokenSerializer(serializers.ModelSerializer):
    grouped = serializers.CharField(read_only=True)

    class Meta:
        model = Token
        fields = ["digits", "grouped", "kind", "purpose", "sequence", "tid", "base_date",
                  "amount_kwh", "value", "issued_at"]  # fmt: skip


class SaleReversalSerializer(serializers.ModelSerializer):
    reversed_by = serializers.StringRelatedField()

    class Meta:
        model = SaleReversal
        fields = ["reversed_by", "reason", "token_entered", "evidence", "refund_amount",
                  "refund_shift", "refund_reference", "debt_restored", "credit_restored",
                  "compensating_debt", "fixed_charge_debt", "reprice_credit", "details",
                  "created_at"]  # fmt: skip


class SaleSerializer(serializers.ModelSerializer):
    token = serializers.SerializerMethodField()
    reversal = serializers.SerializerMethodField()
    meter_number = serializers.CharField(source="account.meter_number", read_only=True)
    # A payment's station is the payment system's own; null only for payments recorded
    # before integration stations existed.
    station = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    sold_by = serializers.StringRelatedField()

    class Meta:
        model = Sale
        fields = ["id", "reference", "organisation", "account", "meter_number", "station",
                  "shift", "sold_by", "channel", "status", "tariff", "currency", "amount_paid",
                  "credit_used", "debt_recovered", "fixed_charge", "tax", "energy_charge",
                  "credit_carried", "energy_kwh", "breakdown", "payment_reference",
                  "offline_reference", "reprint_count", "created_at", "recorded_at", "token",
                  "reversal"]  # fmt: skip
        read_only_fields = fields

    def get_token(self, obj) -> dict | None:
        token = obj.credit_token
        return TokenSerializer(token).data if token else None

    def get_reversal(self, obj) -> dict | None:
        reversal = getattr(obj, "reversal", None)
        return SaleReversalSerializer(reversal).data if reversal else None


class CounterSaleSerializer(serializers.Serializer):
    """A clerk's sale in their open shift."""

    account = ScopedRelatedField(queryset=PrepaidAccount.objects.all(), action="view")
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField(max_length=3, required=False)
    payment_reference = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )


class PaymentSerializer(serializers.Serializer):
    """A third-party payment: who to credit, how much, and the caller's reference."""

    meter_number = serializers.CharField(max_length=18, required=False)
    account_number = serializers.CharField(max_length=32, required=False)
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField(max_length=3)
    payment_reference = serializers.CharField(max_length=100)
    idempotency_key = serializers.CharField(max_length=100, required=False)

    def validate(self, attrs):
        if not attrs.get("meter_number") and not attrs.get("account_number"):
            raise serializers.ValidationError("give the meter_number or the account_number")
        return attrs


class OfflineSaleSerializer(serializers.Serializer):
    """A sale a station made without the network, uploaded with its original time and TID."""

    station = ScopedRelatedField(queryset=VendingStation.objects.all(), action="view")
    meter_number = serializers.CharField(max_length=18)
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField(max_length=3)
    sold_at = serializers.DateTimeField(help_text="when the station sold it (ISO 8601, UTC)")
    tid = serializers.IntegerField(min_value=0, help_text="the token's TID, as the station made it")
    token = serializers.RegexField(r"^\d{20}$", help_text="the 20 digits the customer got")
    offline_reference = serializers.CharField(
        max_length=100, help_text="the station's own number for the sale (retries send it again)"
    )
    payment_reference = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True
    )


class ReverseSerializer(serializers.Serializer):
    """A reversal: why, whether the token was entered, and where the refund is paid."""

    reason = serializers.CharField(max_length=300)
    token_entered = serializers.BooleanField(
        allow_null=True, default=None,
        help_text="was the token entered in the meter? (required: true charges its energy "
        "as debt)",
    )  # fmt: skip
    evidence = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    refund_shift = ScopedRelatedField(
        queryset=Shift.objects.all(), action="change", required=False, allow_null=True
    )
    refund_reference = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True
    )


class DebtAdjustmentSerializer(serializers.Serializer):
    change = serializers.DecimalField(max_digits=12, decimal_places=2)
    reason = serializers.CharField(max_length=300)


class ShiftSerializer(serializers.ModelSerializer):
    station = ScopedRelatedField(queryset=VendingStation.objects.all(), action="view")
    clerk = serializers.StringRelatedField()

    class Meta:
        model = Shift
        fields = ["id", "organisation", "station", "clerk", "status", "opened_at", "closed_at",
                  "opening_float", "expected_cash", "cash_counted", "variance", "note"]  # fmt: skip
        read_only_fields = ["organisation", "clerk", "status", "opened_at", "closed_at",
                            "expected_cash", "cash_counted", "variance", "note"]  # fmt: skip


class CloseShiftSerializer(serializers.Serializer):
    cash_counted = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    note = serializers.CharField(required=False, default="", allow_blank=True)


class ManagementOrderSerializer(serializers.ModelSerializer):
    account = ScopedRelatedField(queryset=PrepaidAccount.objects.all(), action="view")
    purpose = serializers.ChoiceField(choices=[(p.value, p.label) for p in MANAGEMENT_PURPOSES])
    new_base_date = serializers.ChoiceField(
        choices=BaseDate.choices, required=False, allow_null=True
    )
    tokens = TokenSerializer(many=True, read_only=True)
    issued_by = serializers.StringRelatedField()

    class Meta:
        model = ManagementOrder
        fields = ["id", "organisation", "account", "purpose", "watts", "register", "new_sgc",
                  "new_krn", "new_ti", "new_base_date", "reason", "issued_by", "created_at",
                  "tokens"]  # fmt: skip
        read_only_fields = ["organisation", "issued_by", "created_at"]
