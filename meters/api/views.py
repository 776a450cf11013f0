"""Registry API viewsets: grid, meter models, channels, concentrators, meters, customers."""

from django.db import transaction
from django_filters import rest_framework as filters
from rest_framework import permissions, viewsets

from accounts import audit
from accounts.api.base import ModelPermissions, ScopedModelViewSet
from accounts.api.filters import ScopedFilterSet

from ..choices import Protocol
from ..models import (
    ActualConfiguration,
    Channel,
    Customer,
    DataConcentrator,
    DesiredConfiguration,
    GridNode,
    Meter,
    MeterModel,
)
from . import serializers


class GridNodeViewSet(ScopedModelViewSet):
    queryset = GridNode.objects.all()
    serializer_class = serializers.GridNodeSerializer
    filterset_fields = ["kind", "parent", "organisation"]
    search_fields = ["name", "code", "address"]
    ordering_fields = ["path", "name", "code", "kind"]


class MeterModelViewSet(ScopedModelViewSet):
    queryset = MeterModel.objects.prefetch_related("channels")
    serializer_class = serializers.MeterModelSerializer
    filterset_fields = ["protocol", "manufacturer"]
    search_fields = ["manufacturer", "name"]
    ordering_fields = ["manufacturer", "name"]


class ChannelViewSet(ScopedModelViewSet):
    queryset = Channel.objects.all()
    serializer_class = serializers.ChannelSerializer
    filterset_fields = ["meter_model", "kind", "obis"]
    search_fields = ["obis", "name"]
    ordering_fields = ["obis", "name", "kind"]


class _ProtocolFilter(ScopedFilterSet):
    """`?protocol=` filters on the row's endpoint."""

    protocol = filters.ChoiceFilter(field_name="endpoint__protocol", choices=Protocol.choices)


class DataConcentratorFilter(_ProtocolFilter):
    class Meta:
        model = DataConcentrator
        fields = ["organisation", "grid_node", "protocol"]


class MeterFilter(_ProtocolFilter):
    class Meta:
        model = Meter
        fields = [
            "status",
            "meter_model",
            "protocol",
            "service_point",
            "concentrator",
            "organisation",
        ]


class DataConcentratorViewSet(ScopedModelViewSet):
    queryset = DataConcentrator.objects.select_related("endpoint", "line")
    serializer_class = serializers.DataConcentratorSerializer
    filterset_class = DataConcentratorFilter
    search_fields = ["serial", "name"]
    ordering_fields = ["serial", "name"]


class MeterViewSet(ScopedModelViewSet):
    queryset = Meter.objects.select_related("meter_model", "endpoint")
    serializer_class = serializers.MeterSerializer
    filterset_class = MeterFilter
    ordering_fields = ["serial", "status", "install_date"]
    search_fields = ["serial", "firmware", "service_point__code", "service_point__address"]


class CustomerViewSet(ScopedModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = serializers.CustomerSerializer
    filterset_fields = ["service_point", "tariff_code"]
    search_fields = ["account_number", "name", "email", "phone"]
    ordering_fields = ["account_number", "name"]


class DesiredConfigurationViewSet(ScopedModelViewSet):
    """Desired configuration sections of meter models and meters (engineers write)."""

    queryset = DesiredConfiguration.objects.all()
    serializer_class = serializers.DesiredConfigurationSerializer
    filterset_fields = ["section", "meter", "meter_model"]
    ordering_fields = ["section", "updated_at"]

    def perform_create(self, serializer):
        with transaction.atomic():
            obj = serializer.save(updated_by=self.request.user)
            self._recheck(obj, None)

    def perform_update(self, serializer):
        before = getattr(self, "_before", None) or audit.snapshot(serializer.instance)
        with transaction.atomic():
            obj = serializer.save(updated_by=self.request.user)
            self._recheck(obj, before)


class ActualConfigurationViewSet(viewsets.ReadOnlyModelViewSet):
    """What each meter last read back, per section (written by the command queue only)."""

    queryset = ActualConfiguration.objects.all()
    serializer_class = serializers.ActualConfigurationSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    filterset_fields = ["section", "meter"]
    ordering_fields = ["read_at", "section"]

    def get_queryset(self):
        return ActualConfiguration.objects.restrict(self.request.user, "view")
