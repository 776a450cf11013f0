"""Vending reports as scoped querysets: sales per station/clerk/day, per tariff, debt.

Each function takes a queryset the caller already restricted (`restrict(user, "view")`),
so a report never shows more than its reader may see. Reversed sales are left out.
"""

from __future__ import annotations

import csv
from io import StringIO

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from .choices import SaleStatus


def _completed(sales):
    return sales.filter(status=SaleStatus.COMPLETED)


def sales_by_station_clerk_day(sales):
    return (
        _completed(sales)
        .annotate(day=TruncDate("created_at"))
        .values("day", "station__code", "sold_by__username", "currency")
        .annotate(sales=Count("id"), amount=Sum("amount_paid"), kwh=Sum("energy_kwh"))
        .order_by("-day", "station__code", "sold_by__username")
    )


def sales_by_tariff(sales):
    return (
        _completed(sales)
        .values("tariff__code", "tariff__name", "currency")
        .annotate(
            sales=Count("id"),
            amount=Sum("amount_paid"),
            kwh=Sum("energy_kwh"),
            tax=Sum("tax"),
            fixed=Sum("fixed_charge"),
            debt=Sum("debt_recovered"),
        )  # fmt: skip
        .order_by("tariff__code")
    )


def outstanding_debt(accounts):
    return (
        accounts.filter(debt_balance__gt=0)
        .values("meter_number", "customer__account_number", "customer__name", "debt_balance")
        .order_by("-debt_balance", "meter_number")
    )


# Each table: title, columns (key, heading), row source (sales or accounts).
TABLES = {
    "by-station": ("Sales per station, clerk and day", [
        ("day", "Day"), ("station__code", "Station"), ("sold_by__username", "Sold by"),
        ("currency", "Currency"), ("sales", "Sales"), ("amount", "Amount"), ("kwh", "kWh")],
        "sales", sales_by_station_clerk_day),
    "by-tariff": ("Sales per tariff", [
        ("tariff__code", "Tariff"), ("tariff__name", "Name"), ("currency", "Currency"),
        ("sales", "Sales"), ("amount", "Amount"), ("kwh", "kWh"), ("tax", "Tax"),
        ("fixed", "Fixed charges"), ("debt", "Debt recovered")],
        "sales", sales_by_tariff),
    "debt": ("Outstanding debt", [
        ("meter_number", "Meter"), ("customer__account_number", "Account"),
        ("customer__name", "Customer"), ("debt_balance", "Debt")],
        "accounts", outstanding_debt),
}  # fmt: skip


def to_csv(rows, columns) -> str:
    out = StringIO()
    writer = csv.writer(out)
    writer.writerow([heading for _key, heading in columns])
    for row in rows:
        writer.writerow(["" if row[key] is None else row[key] for key, _h in columns])
    return out.getvalue()
