"""A customer's monthly bills from the billing determinants (`reports.billing`).

A bill is a calendar month of the utility's local days. Its figures are the determinants
of the meters at the customer's service point: per energy register the best read at the
month's start and end and the consumption between them (or the sum of the load profile's
intervals where a read is missing), the maximum demand, and the share of the month's
intervals that were estimated or missing. The billed energy is the import total register
(`1-0:1.8.0`) of each meter; it is priced with the customer's tariff
(`portal.usage.tariff_of`: blocks from the month's first kWh, the monthly fixed charge,
the tax).

"What was estimated and why" (`Bill.notes`) names each reason the determinants carry: an
estimated or substituted read, a missing read replaced by the interval sum, the estimated
and missing share of the intervals, a bill held for the utility's review. A bill with no
note is all actual reads.

Bills are computed when asked (nothing stored): the history lists complete months from the
daily rollups (one grouped statement), the bill page and its PDF compute one month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from io import BytesIO

from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from meters.models import Customer
from meters.obis import parse as parse_obis
from meters.store import DailyEnergy
from meters.store.interval_energy import energy_channels
from reports.billing import DEMAND_D, INTERVAL_SUM, Period, determinants
from vending import tariffs
from vending.errors import SaleRefused
from vending.models import Tariff
from vending.usage import IMPORT_PROFILE, kwh

from .activation import bill_code
from .customers import meters_of, month_start
from .usage import tariff_of

IMPORT_TOTAL = "1-0:1.8.0*255"
HISTORY_MONTHS = 12
UNIT_KWH = {"wh": Decimal("0.001"), "kwh": Decimal(1), "mwh": Decimal(1000)}


def months(customer: Customer, today: date | None = None) -> list[tuple[str, Decimal | None]]:
    """(YYYY-MM, kWh from the rollups or None) of the last complete months, newest first."""
    today = today or timezone.localdate()
    starts = [month_start(today, back) for back in range(1, HISTORY_MONTHS + 1)]
    meters = list(meters_of(customer).values_list("pk", "meter_model_id"))
    totals: dict[date, Decimal] = {}
    if meters:
        channels = {c.pk: c for c in energy_channels({m for _, m in meters}, IMPORT_PROFILE)}
        rows = (
            DailyEnergy.objects.filter(
                meter_id__in=[pk for pk, _ in meters],
                channel_id__in=list(channels),
                day__gte=starts[-1],
                day__lt=month_start(today),
            )
            .annotate(month=TruncMonth("day"))
            .values("month", "channel_id")
            .annotate(value=Sum("value"))
        )
        for row in rows:
            energy = kwh(row["value"], channels[row["channel_id"]])
            if energy is not None:
                totals[row["month"]] = totals.get(row["month"], Decimal(0)) + energy
    return [(f"{start:%Y-%m}", totals.get(start)) for start in starts]


@dataclass
class Line:
    """One register of one meter on the bill."""

    serial: str
    name: str
    unit: str
    start_value: Decimal | None
    start_at: object
    start_class: str
    end_value: Decimal | None
    end_at: object
    end_class: str
    consumption: Decimal | None
    source: str
    is_demand: bool


@dataclass
class Bill:
    customer: Customer
    period: Period
    lines: list[Line] = field(default_factory=list)
    billed_kwh: Decimal | None = None
    tariff: Tariff | None = None
    energy: Decimal = Decimal(0)
    energy_lines: list[dict] = field(default_factory=list)
    fixed: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    notes: list[str] = field(default_factory=list)
    held: bool = False
    code: str = ""

    @property
    def total(self) -> Decimal:
        return self.energy + self.fixed + self.tax

    @property
    def month(self) -> str:
        return f"{self.period.first:%Y-%m}"

    @property
    def estimated(self) -> bool:
        return bool(self.notes)


def _in_kwh(value: Decimal | None, unit: str) -> Decimal | None:
    factor = UNIT_KWH.get((unit or "").lower())
    return None if value is None or factor is None else (value * factor).quantize(Decimal("0.001"))


def _percent(share) -> str:
    return f"{(share * 100).quantize(Decimal('0.1'))}%"


def bill(customer: Customer, month: str) -> Bill:
    """The bill of `month` (YYYY-MM); ValueError for a month that is not one."""
    period = Period.month(month)
    result = Bill(customer, period, code=bill_code(customer, month))
    meters = meters_of(customer).select_related("service_point", "meter_model")
    billed = None
    for found in determinants(meters, period):
        serial = found.meter.serial
        for row in found.rows:
            demand = parse_obis(row["obis"]).d == DEMAND_D
            result.lines.append(
                Line(serial, row["name"], row["unit"], row["start_value"], row["start_at"],
                     row["start_class"], row["end_value"], row["end_at"], row["end_class"],
                     row["consumption"], row["source"], demand)
            )  # fmt: skip
            name = f"{row['name']} of meter {serial}"
            for bound in ("start", "end"):
                cls = row[f"{bound}_class"]
                if cls in ("estimated", "substituted"):
                    who = "by the utility" if cls == "substituted" else "by the meter or the system"
                    result.notes.append(f"The {bound} read of {name} was {cls} {who}.")
            if row["source"] == INTERVAL_SUM:
                result.notes.append(
                    f"{name}: a read at the month's {_missing(row)} is missing, so the "
                    "consumption is the sum of the meter's 15-minute values instead."
                )
            if row["obis"] == IMPORT_TOTAL and row["consumption"] is not None:
                energy = _in_kwh(row["consumption"], row["unit"])
                if energy is not None:
                    billed = (billed or Decimal(0)) + energy
        if found.estimated_share:
            result.notes.append(
                f"Meter {serial}: {_percent(found.estimated_share)} of the month's interval "
                "values were estimated (the meter did not report them)."
            )
        if found.missing_share:
            result.notes.append(
                f"Meter {serial}: {_percent(found.missing_share)} of the month's interval "
                "values are missing."
            )
        if found.held:
            result.held = True
            result.notes.append(
                f"Meter {serial}: too much of the month is estimated or missing; the utility "
                "checks this bill before it is final."
            )
    result.billed_kwh = billed
    result.tariff = tariff_of(customer)
    if billed is not None and result.tariff is not None:
        try:
            result.energy, result.energy_lines = tariffs.energy_cost(
                max(billed, Decimal(0)), tariffs.blocks_of(result.tariff), Decimal(0)
            )
        except SaleRefused:
            result.notes.append("The tariff has no price for this energy: no charge shown.")
        else:
            result.fixed = tariffs.money(result.tariff.fixed_charge_monthly)
            percent = result.tariff.tax_percent
            result.tax = tariffs.tax_on(result.fixed, percent) + tariffs.tax_on(
                result.energy, percent
            )
    return result


def _missing(row) -> str:
    return "start" if row["start_value"] is None else "end"


def first_billable(today: date | None = None) -> date:
    """The first day of the current month: bills are for months before it."""
    return (today or timezone.localdate()).replace(day=1)


def is_billable(month: str, today: date | None = None) -> bool:
    try:
        period = Period.month(month)
    except ValueError:
        return False
    first = first_billable(today)
    return month_start(first, HISTORY_MONTHS * 5) <= period.first < first


def pdf(found: Bill) -> bytes:
    """The bill as a one-page A4 PDF (uncompressed, so its text is searchable)."""
    buffer = BytesIO()
    pdf_canvas = canvas.Canvas(
        buffer, pagesize=(210 * mm, 297 * mm), pageCompression=0, invariant=1
    )
    pdf_canvas.setTitle(f"Bill {found.month} {found.customer.account_number}")
    y = 280 * mm

    def line(text: str, size: int = 9, bold: bool = False, gap: float = 5.2) -> None:
        nonlocal y
        if y < 20 * mm:
            pdf_canvas.showPage()
            y = 280 * mm
        pdf_canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        pdf_canvas.drawString(18 * mm, y, text[:120])
        y -= gap * mm

    customer = found.customer
    line(f"Electricity bill {found.period.first:%B %Y}", 16, True, 9)
    line(f"{customer.name} - account {customer.account_number}")
    line(f"Service point {customer.service_point.code} {customer.service_point.address or ''}")
    line(f"Period {found.period.first:%d %B %Y} to {found.period.last:%d %B %Y}", gap=8)
    line("Meter readings", 11, True)
    for item in found.lines:
        if item.is_demand:
            line(f"{item.serial}  {item.name}: {_value(item.end_value)} {item.unit}")
            continue
        line(
            f"{item.serial}  {item.name}: {_value(item.start_value)} -> {_value(item.end_value)} "
            f"{item.unit} = {_value(item.consumption)} {item.unit}"
            f"{' (interval sum)' if item.source == INTERVAL_SUM else ''}"
        )
    y -= 3 * mm
    line("Charges", 11, True)
    if found.tariff is None or found.billed_kwh is None:
        line("No charge can be shown: no tariff or no billed energy for this month.")
    else:
        currency = found.tariff.currency
        line(f"Energy billed: {found.billed_kwh:.3f} kWh on tariff {found.tariff.name}")
        for block in found.energy_lines:
            line(f"  {block['kwh']} kWh at {block['price_per_kwh']} = {block['money']} {currency}")
        line(f"Fixed charge: {found.fixed} {currency}")
        line(f"Tax: {found.tax} {currency}")
        line(f"Total: {found.total} {currency}", 12, True, 8)
    line("What was estimated", 11, True)
    for note in found.notes or ["Nothing: every figure comes from actual meter reads."]:
        line(note)
    y -= 4 * mm
    line(f"Portal activation code for this bill: {found.code}", 9, True)
    pdf_canvas.showPage()
    pdf_canvas.save()
    return buffer.getvalue()


def _value(value) -> str:
    return "-" if value is None else f"{value}"
