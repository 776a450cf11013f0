"""Serializers of the reports API."""

from __future__ import annotations

from rest_framework import serializers


class ReportColumnSerializer(serializers.Serializer):
    key = serializers.CharField()
    heading = serializers.CharField()


class ReportSerializer(serializers.Serializer):
    """A report: its columns and rows (every cell a string, decimals exact)."""

    report = serializers.CharField()
    title = serializers.CharField()
    to = serializers.DateField()
    time_zone = serializers.CharField()
    columns = ReportColumnSerializer(many=True)
    rows = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


# "from" is a Python keyword, so the period's first day is declared by name.
ReportSerializer._declared_fields["from"] = serializers.DateField()


class BillingRegisterSerializer(serializers.Serializer):
    obis = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)
    start_value = serializers.CharField(allow_null=True)
    start_at = serializers.DateTimeField(allow_null=True)
    start_class = serializers.CharField(allow_blank=True)
    end_value = serializers.CharField(allow_null=True)
    end_at = serializers.DateTimeField(allow_null=True)
    end_class = serializers.CharField(allow_blank=True)
    demand_at = serializers.DateTimeField(allow_null=True)
    consumption = serializers.CharField(allow_null=True)
    source = serializers.CharField(allow_blank=True)
    profile_sum = serializers.CharField(allow_null=True)
    difference = serializers.CharField(allow_null=True)
    flags = serializers.CharField(allow_blank=True)


class BillingMeterSerializer(serializers.Serializer):
    """One meter's billing determinants for the period (decimals as exact strings)."""

    serial = serializers.CharField()
    service_point = serializers.CharField(allow_blank=True)
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    estimated_share = serializers.CharField(allow_null=True)
    missing_share = serializers.CharField(allow_null=True)
    held = serializers.BooleanField()
    flags = serializers.ListField(child=serializers.CharField())
    registers = BillingRegisterSerializer(many=True)


class BillingPageSerializer(serializers.Serializer):
    """A page of billing determinants; `threshold`: AMI_BILLING_MAX_ESTIMATED_SHARE."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    threshold = serializers.CharField()
    results = BillingMeterSerializer(many=True)


class BillingCursorPageSerializer(serializers.Serializer):
    """A page of billing determinants by meter id; `next` carries the cursor (null: last)."""

    next = serializers.URLField(allow_null=True)
    threshold = serializers.CharField()
    results = BillingMeterSerializer(many=True)


class BalanceBucketSerializer(serializers.Serializer):
    """An interval, day, month or the whole period: energies in Wh as exact decimal strings."""

    bucket = serializers.CharField()
    input_wh = serializers.CharField(allow_null=True, help_text="the check meters' net energy")
    delivered_wh = serializers.CharField(allow_null=True, help_text="the meters below, net")
    loss_wh = serializers.CharField(allow_null=True)
    loss_percent = serializers.CharField(allow_null=True, help_text="null when incomplete")
    complete = serializers.BooleanField()


class BalanceNodeSerializer(serializers.Serializer):
    """A feeder's or transformer's energy balance over the period."""

    id = serializers.IntegerField()
    code = serializers.CharField()
    kind = serializers.CharField(help_text="feeder or transformer")
    name = serializers.CharField()
    check_meters = serializers.ListField(child=serializers.CharField())
    meters = serializers.IntegerField(help_text="meters below the node in scope")
    total = BalanceBucketSerializer()
    flags = serializers.ListField(child=serializers.CharField())


class PageSerializer(serializers.Serializer):
    """A page of `Pagination` (subclasses add `results`)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class BalancePageSerializer(PageSerializer):
    results = BalanceNodeSerializer(many=True)


class MeterShareSerializer(serializers.Serializer):
    serial = serializers.CharField()
    delivered_wh = serializers.CharField()
    share_percent = serializers.CharField(allow_null=True)
    share_loss_correlation = serializers.FloatField(allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())


class BalanceDetailSerializer(BalanceNodeSerializer):
    resolution = serializers.CharField()
    buckets = BalanceBucketSerializer(many=True)
    hints = serializers.ListField(child=serializers.CharField())
    children = BalanceNodeSerializer(many=True, help_text="a feeder's transformers")
    meter_shares = MeterShareSerializer(many=True)


class LoadSerializer(serializers.Serializer):
    """A node's or customer class's load: kW and hours as exact decimal strings."""

    id = serializers.IntegerField(allow_null=True, help_text="the grid node; null for a class")
    key = serializers.CharField(help_text="node code or tariff code")
    name = serializers.CharField()
    source = serializers.CharField(help_text="check meters, meters below or customer class")
    meters = serializers.IntegerField()
    peak_kw = serializers.CharField(allow_null=True)
    peak_at = serializers.DateTimeField(allow_null=True)
    average_kw = serializers.CharField(allow_null=True)
    load_factor = serializers.CharField(allow_null=True)
    rated_kw = serializers.CharField(allow_null=True)
    peak_percent_of_rating = serializers.CharField(allow_null=True)
    overload_hours = serializers.CharField(allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())


class LoadPageSerializer(PageSerializer):
    results = LoadSerializer(many=True)


class DemandSerializer(serializers.Serializer):
    at = serializers.CharField(help_text="interval end, local time with offset")
    kw = serializers.CharField()


class LoadDetailSerializer(LoadSerializer):
    duration_curve_kw = serializers.ListField(child=serializers.CharField())
    demand = DemandSerializer(many=True)


class TamperMeterSerializer(serializers.Serializer):
    """One ranked meter: findings and score (decimals as exact strings)."""

    meter = serializers.CharField()
    service_point = serializers.CharField()
    score = serializers.IntegerField()
    tamper_events = serializers.IntegerField()
    last_tamper = serializers.DateTimeField(allow_null=True)
    reverse_energy_events = serializers.IntegerField()
    consumption_wh = serializers.CharField(allow_null=True)
    previous_period_wh = serializers.CharField(allow_null=True)
    change_percent = serializers.CharField(allow_null=True)
    transformer_median_wh = serializers.CharField(allow_null=True)
    energy_while_open_wh = serializers.CharField(allow_null=True)
    unreachable = serializers.BooleanField()
    days_since_last_read = serializers.IntegerField(allow_null=True)
    read_success_percent = serializers.CharField(allow_null=True)
    median_read_seconds = serializers.FloatField(allow_null=True)
    flags = serializers.CharField(allow_blank=True)


class TamperPageSerializer(PageSerializer):
    results = TamperMeterSerializer(many=True)
