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

Bills are issued once and stored (`portal.models.Bill`): `issue` computes a month and keeps
what the bill says (figures, lines, notes, names, the activation code); the page and the PDF
are drawn from that row ever after, so a late read, a new tariff or a renamed customer never
changes a bill already issued. A month is issued from `AMI_PORTAL_BILL_GRACE_DAYS` (2) days
after its last day (late reads have come in by then), for every customer, by the beat task
`portal.issue_bills` or `manage.py portal_issue_bills` (a page view never writes), set-based:
`issue_month` takes `ISSUE_CHUNK` customers at a time (one determinants pass, one insert,
one transaction each; see there). Until a
month is issued its page and PDF show a provisional bill (computed when asked, not stored)
that says so. The
history lists the last complete months: the stored bills' totals and the daily rollups'
usage (one grouped statement).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from io import BytesIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from meters.models import Customer, Meter
from meters.obis import parse as parse_obis
from meters.store import DailyEnergy
from meters.store.interval_energy import energy_channels
from reports.billing import DEMAND_D, INTERVAL_SUM, Period, determinants
from vending import tariffs
from vending.errors import SaleRefused
from vending.models import Tariff
from vending.usage import IMPORT_PROFILE, kwh

from . import models
from .activation import bill_code
from .customers import meters_of, month_start
from .usage import tariff_of, tariffs_of

IMPORT_TOTAL = "1-0:1.8.0*255"
HISTORY_MONTHS = 12
ISSUE_CHUNK = 500  # customers a transaction when a month is issued
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


@dataclass(frozen=True)
class TariffAsBilled:
    """The tariff as the bill names it (the stored bill keeps these, not the tariff row)."""

    code: str
    name: str
    currency: str


@dataclass
class Bill:
    customer: Customer
    period: Period
    lines: list[Line] = field(default_factory=list)
    billed_kwh: Decimal | None = None
    tariff: Tariff | TariffAsBilled | None = None
    energy: Decimal = Decimal(0)
    energy_lines: list[dict] = field(default_factory=list)
    fixed: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    notes: list[str] = field(default_factory=list)
    held: bool = False
    code: str = ""
    holder: str = ""  # the customer's name, account and service point as billed
    account_number: str = ""
    service_point: str = ""
    issued_at: datetime | None = None  # None: provisional (computed, not stored)
    issues_on: date | None = None  # when a provisional bill will be issued

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
    meters = meters_of(customer).select_related("service_point", "meter_model")
    return compose(customer, period, determinants(meters, period), tariff_of(customer))


def compose(customer: Customer, period: Period, found_meters, tariff) -> Bill:
    """The bill of the customer's meters' determinants (`found_meters`, in serial order)
    priced with `tariff` (`bill` for one customer; `issue_month` for a chunk of them)."""
    month = f"{period.first:%Y-%m}"
    point = customer.service_point
    result = Bill(
        customer, period, code=bill_code(customer, month), holder=customer.name,
        account_number=customer.account_number,
        service_point=f"{point.code} {point.address or ''}".strip(),
    )  # fmt: skip
    billed = None
    for found in found_meters:
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
    result.tariff = tariff
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
    pdf_canvas.setTitle(f"Bill {found.month} {found.account_number}")
    y = 280 * mm

    def line(text: str, size: int = 9, bold: bool = False, gap: float = 5.2) -> None:
        nonlocal y
        if y < 20 * mm:
            pdf_canvas.showPage()
            y = 280 * mm
        pdf_canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        pdf_canvas.drawString(18 * mm, y, text[:120])
        y -= gap * mm

    line(f"Electricity bill {found.period.first:%B %Y}", 16, True, 9)
    line(f"{found.holder} - account {found.account_number}")
    line(f"Service point {found.service_point}")
    if found.issued_at is not None:
        line(f"Issued {timezone.localtime(found.issued_at):%d %B %Y}")
    else:
        line(f"PROVISIONAL: the bill is issued on {found.issues_on:%d %B %Y}; "
             "its figures may change until then.", 10, True)  # fmt: skip
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


# --- issued bills ---------------------------------------------------------------------


def grace() -> timedelta:
    return timedelta(days=settings.AMI_PORTAL_BILL_GRACE_DAYS)


def issues_on(month: str) -> date:
    """The first local day on which `month`'s bill may be issued."""
    return Period.month(month).last + timedelta(days=1) + grace()


def _text(value) -> str | None:
    return None if value is None else str(value)


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(value)


def _when(value) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def content_of(found: Bill) -> dict:
    """What the stored row keeps beyond its columns: every line, charge, note and name."""
    lines = []
    for item in found.lines:
        row = asdict(item)
        for key in ("start_value", "end_value", "consumption"):
            row[key] = _text(row[key])
        for key in ("start_at", "end_at"):
            row[key] = None if row[key] is None else row[key].isoformat()
        lines.append(row)
    tariff = found.tariff
    return {
        "lines": lines,
        "tariff": None if tariff is None else {
            "code": tariff.code, "name": tariff.name, "currency": tariff.currency
        },
        "energy": str(found.energy), "fixed": str(found.fixed), "tax": str(found.tax),
        "energy_lines": [{k: str(v) for k, v in block.items()} for block in found.energy_lines],
        "notes": list(found.notes), "code": found.code, "holder": found.holder,
        "account_number": found.account_number, "service_point": found.service_point,
    }  # fmt: skip


def from_row(row: models.Bill) -> Bill:
    """The bill as issued, drawn from its stored row."""
    content = row.content
    lines = []
    for item in content["lines"]:
        values = dict(item)
        for key in ("start_value", "end_value", "consumption"):
            values[key] = _decimal(values[key])
        for key in ("start_at", "end_at"):
            values[key] = _when(values[key])
        lines.append(Line(**values))
    tariff = content["tariff"]
    return Bill(
        customer=row.customer,
        period=Period.month(f"{row.month:%Y-%m}"),
        lines=lines,
        billed_kwh=row.billed_kwh,
        tariff=None if tariff is None else TariffAsBilled(**tariff),
        energy=Decimal(content["energy"]),
        energy_lines=content["energy_lines"],
        fixed=Decimal(content["fixed"]),
        tax=Decimal(content["tax"]),
        notes=list(content["notes"]),
        held=row.held,
        code=content["code"],
        holder=content["holder"],
        account_number=content["account_number"],
        service_point=content["service_point"],
        issued_at=row.issued_at,
    )


def stored_row(computed: Bill, now: datetime) -> models.Bill:
    """The row that keeps a computed bill as issued `now` (not saved)."""
    return models.Bill(
        organisation_id=computed.customer.organisation_id,
        customer=computed.customer,
        month=computed.period.first,
        issued_at=now,
        account_number=computed.account_number,
        billed_kwh=computed.billed_kwh,
        currency=computed.tariff.currency if computed.tariff else "",
        total=computed.total,
        estimated=computed.estimated,
        held=computed.held,
        content=content_of(computed),
    )


def issue(customer: Customer, month: str, now: datetime | None = None) -> models.Bill:
    """The stored bill of `month`, issued now if it is not yet (once: a second call, or a
    concurrent one, returns the row the first stored). ValueError before its issue day."""
    now = now or timezone.now()
    stored = models.Bill.objects.filter(customer=customer, month=Period.month(month).first)
    found = stored.first()
    if found is not None:
        return found
    if timezone.localtime(now).date() < issues_on(month):
        raise ValueError(f"the bill of {month} is issued from {issues_on(month)}")
    row = stored_row(bill(customer, month), now)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # issued meanwhile by another request or the batch
        return stored.get()
    return row


def for_month(customer: Customer, month: str) -> Bill:
    """The issued bill as stored, else a provisional one (computed now, not stored)."""
    row = models.Bill.objects.filter(customer=customer, month=Period.month(month).first).first()
    if row is not None:
        return from_row(row)
    found = bill(customer, month)
    found.issues_on = max(issues_on(month), timezone.localdate())
    return found


def issue_month(
    month: str, now: datetime | None = None, customers=None, chunk: int = ISSUE_CHUNK, log=None
) -> int:
    """Issue `month`'s bill of every customer (of `customers`) that has none; how many.

    Set-based, a chunk of `chunk` customers at a time in customer order: their meters'
    determinants in one pass (`reports.billing.determinants`), their tariffs in two
    queries, the bills inserted in one statement, one transaction per chunk. The insert
    skips a customer already billed (the unique key: `ON CONFLICT DO NOTHING`), so a run
    killed half way is finished by the next, two runs at once store one bill each, and an
    issued bill is never changed."""
    now = now or timezone.now()
    period = Period.month(month)
    if customers is None:
        customers = Customer.objects.all()
    done = models.Bill.objects.filter(month=period.first).values("customer_id")
    pending = customers.exclude(pk__in=done).select_related("service_point", "organisation")
    issued, after = 0, 0
    while batch := list(pending.filter(pk__gt=after).order_by("pk")[:chunk]):
        after = batch[-1].pk
        issued += _issue_chunk(batch, period, now)
        if log:
            log(f"bills of {month}: {issued} issued, up to customer {after}")
    return issued


def _issue_chunk(batch: list[Customer], period: Period, now: datetime) -> int:
    meters = (
        Meter.objects.filter(service_point_id__in={c.service_point_id for c in batch})
        .select_related("service_point", "meter_model")
        .order_by("service_point_id", "serial")
    )
    at_point: dict[int, list] = defaultdict(list)
    for found in determinants(meters, period):
        at_point[found.meter.service_point_id].append(found)
    tariffs = tariffs_of(batch)
    rows = [
        stored_row(compose(c, period, at_point.get(c.service_point_id, []), tariffs[c.pk]), now)
        for c in batch
    ]
    with transaction.atomic():
        models.Bill.objects.bulk_create(rows, ignore_conflicts=True)
    # what this run stored (a concurrent run's rows carry its own time)
    return models.Bill.objects.filter(month=period.first, customer__in=batch, issued_at=now).count()


def issued(customer: Customer, months_shown: list[str]) -> dict[str, models.Bill]:
    """{YYYY-MM: stored bill} of the customer's among `months_shown`."""
    firsts = [Period.month(m).first for m in months_shown]
    rows = models.Bill.objects.filter(customer=customer, month__in=firsts).only(
        "month", "total", "currency", "estimated", "held", "billed_kwh", "issued_at"
    )
    return {f"{row.month:%Y-%m}": row for row in rows}
