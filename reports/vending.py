"""Vending reports for a period of local days: revenue, VAT, sales, cash, debt, remainders.

Each report takes `Sources` (querysets the caller already restricted with
`restrict(user, "view")`, so a report never shows more than its reader may see) and a
`Period` of whole days in the utility's time zone. Days and months are those of that zone.

How an auditor reads them (docs/vending.md, "Reports"):

* A sale counts in the period it was made, whatever happened to it later; its reversal
  counts, with the opposite sign, in the period of the reversal (a credit note), so a
  closed month's figures never change.
* Charges owed as debt (fixed charges of months without purchase or not covered, the
  energy of an entered token) are revenue and carry VAT when they are charged; debt
  recovered by a sale is not revenue again.
* Money carried forward (paid, not yet credited as energy) is a liability, never revenue.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DecimalField, F, OuterRef, Subquery, Sum
from django.db.models.functions import Cast, TruncDate, TruncMonth
from django.utils import timezone

from amisite import display
from vending.choices import MovementKind, SaleStatus
from vending.models import AccountMovement, PrepaidAccount, Sale, SaleReversal, Shift

from .exporters.table import csv_download, to_csv

ZERO = Decimal("0")
# Movements that charge something (revenue, VAT at the time of the charge).
CHARGED_AS_DEBT = (
    MovementKind.FIXED_ARREARS,
    MovementKind.FIXED_SHORTFALL,
    MovementKind.FIXED_REBILLED,
    MovementKind.COMPENSATING_DEBT,
)


@dataclass(frozen=True)
class Period:
    """Whole local days, `first` to `last` inclusive."""

    first: date
    last: date

    @property
    def zone(self):
        return timezone.get_current_timezone()

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.zone)

    def of(self, queryset, field: str = "created_at"):
        return queryset.filter(**{f"{field}__gte": self.start, f"{field}__lt": self.end})

    @classmethod
    def parse(cls, first: str | None, last: str | None, *, today: date | None = None):
        """From ISO dates; the current month to date by default. ValueError when malformed."""
        today = today or timezone.localdate()
        start = date.fromisoformat(first) if first else today.replace(day=1)
        end = date.fromisoformat(last) if last else today
        if end < start:
            raise ValueError("the period ends before it starts")
        if (end - start).days > 3660:
            raise ValueError("a period is at most ten years")
        return cls(start, end)


@dataclass(frozen=True)
class Sources:
    """The reader's scoped querysets."""

    sales: object
    reversals: object
    movements: object
    accounts: object
    shifts: object


def _sum(*names):
    return {name: Sum(name) for name in names}


def monthly_revenue(src: Sources, period: Period) -> list[dict]:
    month = TruncMonth("created_at", tzinfo=period.zone)
    rows: dict = defaultdict(lambda: defaultdict(lambda: ZERO))
    sales = period.of(src.sales).annotate(month=month).values("month", "currency")
    for row in sales.annotate(sales=Count("id"), kwh=Sum("energy_kwh"), **_sum(
        "amount_paid", "credit_used", "debt_recovered", "fixed_charge", "energy_charge", "tax",
        "credit_carried")):  # fmt: skip
        rows[(row["month"].date(), row["currency"])].update(row)
    reversals = period.of(src.reversals).annotate(month=month)
    for row in reversals.values("month", "sale__currency").annotate(
        reversed=Count("id"), refunds=Sum("refund_amount"),
        reversed_net=Sum(F("sale__fixed_charge") + F("sale__energy_charge")),
        reversed_tax=Sum("sale__tax"),
    ):  # fmt: skip
        rows[(row["month"].date(), row["sale__currency"])].update(row)
    charged = period.of(src.movements.filter(kind__in=CHARGED_AS_DEBT)).annotate(month=month)
    for row in charged.values("month", "account__tariff__currency").annotate(
        debt_net=Sum(F("debt_change") - F("tax")), debt_tax=Sum("tax")
    ):
        rows[(row["month"].date(), row["account__tariff__currency"])].update(row)
    out = []
    for (month_, currency), row in sorted(rows.items()):
        net = row["fixed_charge"] + row["energy_charge"] - row["reversed_net"] + row["debt_net"]
        out.append({
            "month": f"{month_:%Y-%m}", "currency": currency, "sales": row["sales"] or 0,
            "amount_paid": row["amount_paid"], "credit_used": row["credit_used"],
            "debt_recovered": row["debt_recovered"], "fixed_charge": row["fixed_charge"],
            "energy_charge": row["energy_charge"], "tax": row["tax"],
            "credit_carried": row["credit_carried"], "kwh": row["kwh"],
            "reversed": row["reversed"] or 0, "refunds": row["refunds"],
            "reversed_net": row["reversed_net"], "reversed_tax": row["reversed_tax"],
            "debt_net": row["debt_net"], "debt_tax": row["debt_tax"], "net_revenue": net,
            "output_tax": row["tax"] - row["reversed_tax"] + row["debt_tax"],
        })  # fmt: skip
    return out


def vat_return(src: Sources, period: Period) -> list[dict]:
    """Output VAT of the period per currency: sales, less reversals, plus charges owed."""
    totals: dict = defaultdict(lambda: defaultdict(lambda: ZERO))
    for row in monthly_revenue(src, period):
        line = totals[row["currency"]]
        line["sales_net"] += row["fixed_charge"] + row["energy_charge"]
        line["sales_tax"] += row["tax"]
        line["reversed_net"] += row["reversed_net"]
        line["reversed_tax"] += row["reversed_tax"]
        line["debt_net"] += row["debt_net"]
        line["debt_tax"] += row["debt_tax"]
    reprice = period.of(src.movements.filter(kind=MovementKind.REPRICE))
    for row in reprice.values("account__tariff__currency").annotate(
        gross=Sum(F("credit_change") - F("debt_change")), tax=Sum("tax")
    ):
        line = totals[row["account__tariff__currency"]]
        line["adjusted_net"] -= row["gross"] + row["tax"]  # a credit lowers the supplies
        line["adjusted_tax"] += row["tax"]
    out = []
    for currency, line in sorted(totals.items()):
        taxable = line["sales_net"] - line["reversed_net"] + line["debt_net"] + line["adjusted_net"]
        tax = line["sales_tax"] - line["reversed_tax"] + line["debt_tax"] + line["adjusted_tax"]
        keys = ("sales_net", "sales_tax", "reversed_net", "reversed_tax", "debt_net", "debt_tax",
                "adjusted_net", "adjusted_tax")  # fmt: skip
        figures = {key: line[key] for key in keys}
        out.append({"currency": currency, **figures, "taxable_supplies": taxable,
                    "output_tax": tax})  # fmt: skip
    return out


def sales_by_station_clerk_shift_day(src: Sources, period: Period):
    return (
        period.of(src.sales)
        .annotate(day=TruncDate("created_at", tzinfo=period.zone))
        .values("day", "station__code", "sold_by__username", "shift", "channel", "currency")
        .annotate(
            sales=Count("id"),
            kwh=Sum("energy_kwh"),
            **_sum(
                "amount_paid",
                "energy_charge",
                "fixed_charge",
                "tax",
                "debt_recovered",
                "credit_carried",
            ),
        )  # fmt: skip
        .order_by("day", "station__code", "sold_by__username", "shift", "channel")
    )


def cash_reconciliation(src: Sources, period: Period) -> list[dict]:
    """Per station and local day: cash taken, refunds paid out, shifts closed and their count."""
    zone = period.zone
    rows: dict = defaultdict(lambda: defaultdict(lambda: ZERO))
    taken = period.of(src.sales.filter(shift__isnull=False)).annotate(
        day=TruncDate("created_at", tzinfo=zone)
    )
    for row in taken.values("day", "station__code").annotate(
        n=Count("id"), cash=Sum("amount_paid")
    ):
        rows[(row["day"], row["station__code"])].update(sales=row["n"], cash_taken=row["cash"])
    offline = period.of(src.sales.filter(channel="offline")).annotate(
        day=TruncDate("created_at", tzinfo=zone)
    )
    for row in offline.values("day", "station__code").annotate(cash=Sum("amount_paid")):
        rows[(row["day"], row["station__code"])]["offline_sales"] = row["cash"]
    refunds = period.of(src.reversals.filter(refund_shift__isnull=False)).annotate(
        day=TruncDate("created_at", tzinfo=zone)
    )
    for row in refunds.values("day", "refund_shift__station__code").annotate(
        n=Count("id"), paid=Sum("refund_amount")
    ):
        line = rows[(row["day"], row["refund_shift__station__code"])]
        line.update(refunds=row["n"], refunds_paid=row["paid"])
    closed = period.of(src.shifts.filter(closed_at__isnull=False), "closed_at").annotate(
        day=TruncDate("closed_at", tzinfo=zone)
    )
    for row in closed.values("day", "station__code").annotate(
        n=Count("id"), floats=Sum("opening_float"), expected=Sum("expected_cash"),
        counted=Sum("cash_counted"), variance=Sum("variance"),
    ):  # fmt: skip
        line = rows[(row["day"], row["station__code"])]
        line.update(shifts_closed=row["n"], floats=row["floats"], expected=row["expected"],
                    counted=row["counted"], variance=row["variance"])  # fmt: skip
    return [
        {"day": day, "station": station, "sales": line["sales"] or 0,
         "cash_taken": line["cash_taken"], "refunds": line["refunds"] or 0,
         "refunds_paid": line["refunds_paid"],
         "net_cash": line["cash_taken"] - line["refunds_paid"],
         "offline_sales": line["offline_sales"], "shifts_closed": line["shifts_closed"] or 0,
         "floats": line["floats"], "expected": line["expected"], "counted": line["counted"],
         "variance": line["variance"]}
        for (day, station), line in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]  # fmt: skip


def _balances_at(src: Sources, moment: datetime):
    """Each visible account's (debt, carried) just before `moment`, from its movements."""
    last = src.movements.filter(account=OuterRef("pk"), created_at__lt=moment).order_by(
        "-created_at", "-id"
    )
    # Cast: a reader who may not see movements gets an empty subquery, compiled as an
    # untyped NULL that PostgreSQL cannot SUM (the payment-integration role: 500 before).
    money = DecimalField(max_digits=12, decimal_places=2)
    return src.accounts.annotate(
        debt_at=Cast(Subquery(last.values("debt_after")[:1]), money),
        carried_at=Cast(Subquery(last.values("credit_after")[:1]), money),
    )


def debt_movements(src: Sources, period: Period) -> list[dict]:
    """A roll-forward of debt and carried money: opening, each kind of change, closing."""
    opening = _balances_at(src, period.start).aggregate(
        debt=Sum("debt_at"), carried=Sum("carried_at")
    )
    closing = _balances_at(src, period.end).aggregate(
        debt=Sum("debt_at"), carried=Sum("carried_at")
    )
    labels = dict(MovementKind.choices)
    rows = [{"line": "Opening balance", "movements": "", "debt": opening["debt"] or ZERO,
             "carried": opening["carried"] or ZERO, "tax": ""}]  # fmt: skip
    changes = (
        period.of(src.movements)
        .values("kind")
        .annotate(
            n=Count("id"), debt=Sum("debt_change"), carried=Sum("credit_change"), tax=Sum("tax")
        )
    )
    for row in sorted(changes, key=lambda r: r["kind"]):
        rows.append({"line": labels.get(row["kind"], row["kind"]), "movements": row["n"],
                     "debt": row["debt"], "carried": row["carried"],
                     "tax": row["tax"]})  # fmt: skip
    rows.append({"line": "Closing balance", "movements": "", "debt": closing["debt"] or ZERO,
                 "carried": closing["carried"] or ZERO, "tax": ""})  # fmt: skip
    return rows


def remainder_balances(src: Sources, period: Period):
    """Accounts holding money carried forward (paid, not yet credited) at the period's end."""
    return (
        _balances_at(src, period.end)
        .filter(carried_at__gt=0)
        .values("meter_number", "customer__account_number", "customer__name", "carried_at")
        .order_by("-carried_at", "meter_number")
    )


def sales_by_tariff(src: Sources, period: Period):
    return (
        period.of(src.sales.filter(status=SaleStatus.COMPLETED))
        .values("tariff__code", "tariff__name", "currency")
        .annotate(
            sales=Count("id"),
            kwh=Sum("energy_kwh"),
            **_sum("amount_paid", "energy_charge", "tax", "fixed_charge", "debt_recovered"),
        )  # fmt: skip
        .order_by("tariff__code")
    )


def outstanding_debt(src: Sources, period: Period):
    """Debt owed now (not as of the period: see the debt roll-forward for that)."""
    return (
        src.accounts.filter(debt_balance__gt=0)
        .values("meter_number", "customer__account_number", "customer__name", "debt_balance")
        .order_by("-debt_balance", "meter_number")
    )


MONEY_COLUMNS = [("amount_paid", "Paid"), ("energy_charge", "Energy (net)"),
                 ("fixed_charge", "Fixed (net)"), ("tax", "Tax")]  # fmt: skip
# Each table: title, columns (key, heading), builder(sources, period).
TABLES = {
    "revenue": ("Monthly revenue", [
        ("month", "Month"), ("currency", "Currency"), ("sales", "Sales"),
        ("amount_paid", "Paid"), ("credit_used", "Brought forward"),
        ("debt_recovered", "Debt recovered"), ("fixed_charge", "Fixed (net)"),
        ("energy_charge", "Energy (net)"), ("tax", "Tax on sales"),
        ("credit_carried", "Carried forward"), ("kwh", "kWh"), ("reversed", "Reversals"),
        ("refunds", "Refunded"), ("reversed_net", "Reversed (net)"),
        ("reversed_tax", "Reversed tax"), ("debt_net", "Charged as debt (net)"),
        ("debt_tax", "Tax on debt charges"), ("net_revenue", "Net revenue"),
        ("output_tax", "Output tax")], monthly_revenue),
    "vat": ("VAT return", [
        ("currency", "Currency"), ("sales_net", "Sales (net)"), ("sales_tax", "Tax on sales"),
        ("reversed_net", "Reversals (net)"), ("reversed_tax", "Tax reversed"),
        ("debt_net", "Charged as debt (net)"), ("debt_tax", "Tax on debt charges"),
        ("adjusted_net", "Re-pricing (net)"), ("adjusted_tax", "Tax re-priced"),
        ("taxable_supplies", "Taxable supplies"), ("output_tax", "Output tax")], vat_return),
    "by-station": ("Sales per station, clerk, shift and day", [
        ("day", "Day"), ("station__code", "Station"), ("sold_by__username", "Sold by"),
        ("shift", "Shift"), ("channel", "Channel"), ("currency", "Currency"),
        ("sales", "Sales"), *MONEY_COLUMNS, ("debt_recovered", "Debt recovered"),
        ("credit_carried", "Carried forward"), ("kwh", "kWh")],
        sales_by_station_clerk_shift_day),
    "cash": ("Cash reconciliation per station and day", [
        ("day", "Day"), ("station", "Station"), ("sales", "Sales"),
        ("cash_taken", "Cash taken"), ("refunds", "Refunds"), ("refunds_paid", "Refunds paid"),
        ("net_cash", "Net cash"), ("offline_sales", "Offline sales"),
        ("shifts_closed", "Shifts closed"), ("floats", "Floats"), ("expected", "Expected"),
        ("counted", "Counted"), ("variance", "Variance")], cash_reconciliation),
    "debt-movements": ("Debt and carried money: roll-forward", [
        ("line", "Line"), ("movements", "Movements"), ("debt", "Debt"),
        ("carried", "Carried forward"), ("tax", "Tax in charges")], debt_movements),
    "remainders": ("Money carried forward at the period's end", [
        ("meter_number", "Meter"), ("customer__account_number", "Account"),
        ("customer__name", "Customer"), ("carried_at", "Carried forward")],
        remainder_balances),
    "by-tariff": ("Completed sales per tariff", [
        ("tariff__code", "Tariff"), ("tariff__name", "Name"), ("currency", "Currency"),
        ("sales", "Sales"), *MONEY_COLUMNS, ("debt_recovered", "Debt recovered"),
        ("kwh", "kWh")], sales_by_tariff),
    "debt": ("Outstanding debt (now)", [
        ("meter_number", "Meter"), ("customer__account_number", "Account"),
        ("customer__name", "Customer"), ("debt_balance", "Debt")], outstanding_debt),
}  # fmt: skip


def build(slug: str, src: Sources, period: Period) -> tuple[str, list, list[dict]]:
    title, columns, builder = TABLES[slug]
    return title, columns, list(builder(src, period))


ENERGY_COLUMNS = {"kwh"}  # kWh, to the tenth a token carries; every other decimal is money


def exact(key: str, value):
    """A figure at its stored precision (a SQLite SUM gives 173.900000000000)."""
    if isinstance(value, float | Decimal):
        step = Decimal("0.1") if key in ENERGY_COLUMNS else Decimal("0.01")
        return Decimal(str(value)).quantize(step, rounding=ROUND_HALF_UP)
    return value


def shown(key: str, value) -> str:
    """A report cell as the page shows it: money and energy quantised and grouped."""
    if value is None:
        return ""
    if isinstance(value, float | Decimal):
        if key in ENERGY_COLUMNS:
            return display.energy_kwh(value)
        return display.money(value)
    return str(value)


def cell(value) -> str:
    """A cell as text, None empty (CsvWriter quotes text a spreadsheet would run)."""
    return "" if value is None else str(value)


def exact_cell(key: str, row: dict) -> str:
    """A CSV or API cell: the figure at its stored precision, as text."""
    return cell(exact(key, row[key]))


def sources_for(user) -> Sources:
    """The reader's scoped rows every vending report is built from."""
    return Sources(
        sales=Sale.objects.restrict(user, "view"),
        reversals=SaleReversal.objects.restrict(user, "view"),
        movements=AccountMovement.objects.restrict(user, "view"),
        accounts=PrepaidAccount.objects.restrict(user, "view"),
        shifts=Shift.objects.restrict(user, "view"),
    )


def csv_response(slug: str, period: Period, user):
    _title, columns, rows = build(slug, sources_for(user), period)
    name = f"vending-{slug}-{period.first}-{period.last}.csv"
    return csv_download(to_csv(columns, rows, exact_cell), name)
