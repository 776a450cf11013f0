"""Serializers of the registry API; secrets are write-only and shown only as set / not set."""

from __future__ import annotations

import copy
from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from accounts.api.base import ScopedRelatedField
from accounts.models import Organisation

from .. import configuration, obis
from ..choices import NodeKind
from ..models import (
    CHECKED_KINDS,
    ActualConfiguration,
    Channel,
    Customer,
    DataConcentrator,
    DesiredConfiguration,
    Endpoint,
    GridNode,
    Meter,
    MeterEndpoint,
    MeterModel,
)


class ModelCleanMixin:
    """Run the model's own clean() so the API enforces what the admin and imports enforce."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        # A copy: validation must not change the instance before the write is approved.
        instance = copy.copy(self.instance) if self.instance is not None else self.Meta.model()
        for key, value in attrs.items():
            setattr(instance, key, value)
        from django.core.exceptions import ValidationError

        try:
            instance.clean()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class GridNodeSerializer(ModelCleanMixin, serializers.ModelSerializer):
    parent = ScopedRelatedField(
        queryset=GridNode.objects.all(), action="change", allow_null=True, required=False
    )
    organisation = ScopedRelatedField(
        queryset=Organisation.objects.all(),
        action="view",
        required=False,
        help_text="defaults to the parent's organisation",
    )

    class Meta:
        model = GridNode
        fields = [
            "id",
            "kind",
            "name",
            "code",
            "parent",
            "path",
            "organisation",
            "voltage_kv",
            "rated_kva",
            "latitude",
            "longitude",
            "address",
        ]
        read_only_fields = ["path"]

    def validate(self, attrs):
        parent = attrs.get("parent", getattr(self.instance, "parent", None))
        if not attrs.get("organisation") and not getattr(self.instance, "organisation_id", None):
            if parent is None:
                raise serializers.ValidationError({"organisation": "A top-level node needs one."})
            attrs["organisation"] = parent.organisation
        return super().validate(attrs)


class ChannelSerializer(serializers.ModelSerializer):
    meter_model = ScopedRelatedField(queryset=MeterModel.objects.all(), action="change")

    class Meta:
        model = Channel
        fields = [
            "id",
            "meter_model",
            "obis",
            "name",
            "unit",
            "scaler",
            "kind",
            "profile_obis",
            "accumulation",
            "head_end_derived",
        ]
        read_only_fields = ["head_end_derived"]

    def validate_obis(self, value):
        try:
            return obis.normalise(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class MeterModelSerializer(serializers.ModelSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="view")
    channels = ChannelSerializer(many=True, read_only=True)

    class Meta:
        model = MeterModel
        fields = [
            "id",
            "manufacturer",
            "name",
            "protocol",
            "description",
            "get_with_list",
            "organisation",
            "channels",
        ]


SECRET_HELP = "write-only; reads show only whether it is set"


def _endpoint_field(name: str) -> serializers.Field:
    """A writable API field for one endpoint column or named option (read and written
    through the owner: `meter.host`, `meter.dlms_server_address`)."""
    if name in Endpoint.OPTION_FIELDS:
        default, limit = Endpoint.OPTION_FIELDS[name]
        if isinstance(limit, type):
            return serializers.ChoiceField(choices=limit.choices, required=False)
        if isinstance(default, str):
            return serializers.CharField(max_length=limit, required=False, allow_blank=True)
        return serializers.IntegerField(
            min_value=0, max_value=limit, required=False, allow_null=default is None
        )
    field_class, kwargs = serializers.ModelSerializer().build_standard_field(
        name, MeterEndpoint._meta.get_field(name)
    )
    kwargs["required"] = False
    return field_class(**kwargs)


class _EndpointFieldsMeta(serializers.SerializerMetaclass):
    def __new__(mcs, name, bases, attrs):
        for field in attrs.get("ENDPOINT_FIELDS", ()):
            attrs.setdefault(field, _endpoint_field(field))
        return super().__new__(mcs, name, bases, attrs)


class CommSettingsSerializer(
    ModelCleanMixin, serializers.ModelSerializer, metaclass=_EndpointFieldsMeta
):
    """Communication settings (the row's endpoint); secrets accepted on write, never returned."""

    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text=SECRET_HELP
    )
    auth_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text=SECRET_HELP
    )
    block_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text=SECRET_HELP
    )
    secrets_set = serializers.SerializerMethodField()

    ENDPOINT_FIELDS = [
        "protocol",
        "transport",
        "host",
        "port",
        "serial_url",
        "baud_rate",
        "data_bits",
        "parity",
        "stop_bits",
        "dlms_interface",
        "dlms_client_address",
        "dlms_server_address",
        "dlms_physical_address",
        "modbus_unit_id",
        "iec21_address",
        "iec102_link_address",
        "iec102_measuring_point",
        "security",
        "system_title",
        "timeout_s",
        "retries",
    ]
    COMM_FIELDS = [*ENDPOINT_FIELDS, *Endpoint.SECRET_FIELDS, "secrets_set"]

    def get_secrets_set(self, obj) -> dict[str, bool]:
        return {name: bool(getattr(obj, name)) for name in Endpoint.SECRET_FIELDS}


class DataConcentratorSerializer(CommSettingsSerializer):
    organisation = ScopedRelatedField(queryset=Organisation.objects.all(), action="view")
    grid_node = ScopedRelatedField(
        queryset=GridNode.objects.all(), action="change", allow_null=True, required=False
    )
    comm_state = serializers.SerializerMethodField(
        help_text='"up", "down" (one fault of the concentrator, not of its meters) or "unknown"'
    )
    last_contact = serializers.SerializerMethodField()

    class Meta:
        model = DataConcentrator
        fields = [
            "id",
            "serial",
            "name",
            "organisation",
            "grid_node",
            "latitude",
            "longitude",
            "read_mode",
            "comm_state",
            "last_contact",
            *CommSettingsSerializer.COMM_FIELDS,
        ]

    def _line(self, obj):
        try:
            return obj.line
        except ObjectDoesNotExist:
            return None

    def get_comm_state(self, obj) -> str:
        line = self._line(obj)
        return line.state if line is not None else "unknown"

    def get_last_contact(self, obj) -> datetime | None:
        line = self._line(obj)
        return line.last_contact if line is not None else None


class MeterSerializer(CommSettingsSerializer):
    def validate_client_system_title(self, value):
        try:
            ok = not value or len(bytes.fromhex(value)) == 8
        except ValueError:
            ok = False
        if not ok:
            raise serializers.ValidationError("A system title is 8 bytes in hex.")
        return value

    meter_model = ScopedRelatedField(queryset=MeterModel.objects.all(), action="view")
    service_point = ScopedRelatedField(
        queryset=GridNode.objects.filter(kind=NodeKind.SERVICE_POINT),
        action="change",
        allow_null=True,
        required=False,
    )
    concentrator = ScopedRelatedField(
        queryset=DataConcentrator.objects.all(), action="view", allow_null=True, required=False
    )
    check_node = ScopedRelatedField(
        queryset=GridNode.objects.filter(kind__in=CHECKED_KINDS),
        action="change",
        allow_null=True,
        required=False,
        help_text="a check meter's feeder or transformer (energy balance)",
    )
    organisation = ScopedRelatedField(
        queryset=Organisation.objects.all(),
        action="view",
        required=False,
        help_text="taken from the service point (or a check meter's node) when there is one",
    )

    class Meta:
        model = Meter
        fields = [
            "id",
            "serial",
            "meter_model",
            "firmware",
            "phases",
            "ct_ratio",
            "vt_ratio",
            "install_date",
            "client_system_title",
            "status",
            "service_point",
            "concentrator",
            "check_node",
            "organisation",
            "latitude",
            "longitude",
            *CommSettingsSerializer.COMM_FIELDS,
        ]

    def validate(self, attrs):
        service_point = attrs.get("service_point", getattr(self.instance, "service_point", None))
        check_node = attrs.get("check_node", getattr(self.instance, "check_node", None))
        if service_point is not None:
            attrs["organisation"] = service_point.organisation
        elif check_node is not None:
            attrs["organisation"] = check_node.organisation
        elif not attrs.get("organisation") and not getattr(self.instance, "organisation_id", None):
            raise serializers.ValidationError(
                {"organisation": "A meter without a service point needs an organisation."}
            )
        return super().validate(attrs)


class CustomerSerializer(ModelCleanMixin, serializers.ModelSerializer):
    service_point = ScopedRelatedField(
        queryset=GridNode.objects.filter(kind=NodeKind.SERVICE_POINT), action="change"
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "account_number",
            "name",
            "email",
            "phone",
            "tariff_code",
            "service_point",
            "organisation",
        ]
        read_only_fields = ["organisation"]

    def validate(self, attrs):
        if "service_point" in attrs:
            attrs["organisation"] = attrs["service_point"].organisation
        return super().validate(attrs)


class DesiredConfigurationSerializer(ModelCleanMixin, serializers.ModelSerializer):
    """One section of what a meter model's meters, or one meter, should hold; `value` in the
    section's form (docs/api.md, configuration commands). Sending it is a command."""

    meter = ScopedRelatedField(
        queryset=Meter.objects.all(), action="change", allow_null=True, required=False
    )
    meter_model = ScopedRelatedField(
        queryset=MeterModel.objects.all(), action="change", allow_null=True, required=False
    )

    class Meta:
        model = DesiredConfiguration
        fields = ["id", "meter", "meter_model", "section", "value", "organisation"]
        fields += ["updated_by", "updated_at"]
        read_only_fields = ["organisation", "updated_by", "updated_at"]
        validators = []  # one target per row and section: checked in validate()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        current = self.instance
        section = attrs.get("section", current.section if current else "")
        try:
            attrs["value"] = configuration.clean(
                section, attrs.get("value", current.value if current else None)
            )
        except configuration.ConfigError as exc:
            raise serializers.ValidationError({"value": [str(exc)]}) from None
        meter = attrs.get("meter", current.meter if current else None)
        model = attrs.get("meter_model", current.meter_model if current else None)
        same = DesiredConfiguration.objects.filter(
            section=section, meter=meter, meter_model=model if meter is None else None
        )
        if current is not None:
            same = same.exclude(pk=current.pk)
        if same.exists():
            raise serializers.ValidationError({"section": ["already desired for this target"]})
        return attrs


class ActualConfigurationSerializer(serializers.ModelSerializer):
    """One section of a meter's configuration as the meter last read it back."""

    class Meta:
        model = ActualConfiguration
        fields = ["id", "meter", "section", "value", "read_at", "command_id"]
        read_only_fields = fields
