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
