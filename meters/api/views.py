"""Registry API viewsets: grid, meter models, channels, concentrators, meters, customers."""

from accounts.api.base import ScopedModelViewSet

from ..models import Channel, Customer, DataConcentrator, GridNode, Meter, MeterModel
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


class DataConcentratorViewSet(ScopedModelViewSet):
    queryset = DataConcentrator.objects.all()
    serializer_class = serializers.DataConcentratorSerializer
    filterset_fields = ["organisation", "grid_node", "protocol"]
    search_fields = ["serial", "name"]
    ordering_fields = ["serial", "name"]


class MeterViewSet(ScopedModelViewSet):
    queryset = Meter.objects.select_related("meter_model")
    serializer_class = serializers.MeterSerializer
    filterset_fields = [
        "status",
        "meter_model",
        "protocol",
        "service_point",
        "concentrator",
        "organisation",
    ]
    ordering_fields = ["serial", "status", "install_date"]
    search_fields = ["serial", "firmware", "service_point__code", "service_point__address"]


class CustomerViewSet(ScopedModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = serializers.CustomerSerializer
    filterset_fields = ["service_point", "tariff_code"]
    search_fields = ["account_number", "name", "email", "phone"]
    ordering_fields = ["account_number", "name"]
