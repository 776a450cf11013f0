"""Usage for a period: bars, the same period last year, similar homes, TOU rates, an estimate.

Periods are the utility's local calendar: a day (24 hourly bars from the stored intervals),
a week (Monday to Sunday, 7 daily bars), a month (daily bars) and a year (12 monthly bars),
the last three from the store's daily rollups. `window(kind, anchor)` names the period that
holds the anchor day, with the anchors of the periods before and after it.

* **Last year**: the same calendar period a year earlier (29 February falls on the 28th); for
  the running period, its days so far (to today) against the same days a year earlier, not
  a part against a whole. No percentage where last year has readings on fewer days than this
  period (a meter installed during it, a gap), nor for today against a whole day.
* **Similar homes**: the average home of the customers with the same customer class
  (`Customer.tariff_code`) in the same grid area (the feeder above the service point; the
  transformer where there is no feeder), precomputed per area, class and period by
  `portal.similar` (a beat task) and only read here: one row, shown with its "as of" time.
* **Time of use**: the change of each rate register (`1-0:1.8.1`, `1-0:1.8.2`, ...) from
  the first to the last read in the period, its bounds included (a read at midnight closing
  the period counts: the demo and monthly billing reads sit there), per meter, summed; a
  register read once in the period tells nothing and is left out.
* **Estimate**: this month's daily rate, carried on to the end of the month, priced with the
  customer's tariff (its blocks from the first kWh of the month, the monthly fixed charge,
  the tax). The rate is that of the month's whole days before today: today so far is part
  of a day and would pull it down (on the 1st, today so far is all there is, counted as a
  day). Always labelled an estimate.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Max, Min
from django.utils import timezone

from meters.choices import NodeKind
from meters.models import Channel, Customer, GridNode
from meters.store import RegisterRead
from meters.store.days import day_bounds, local_zone
from meters.store.interval_energy import energy_channels, energy_series
from vending import tariffs
from vending.errors import SaleRefused
from vending.models import PrepaidAccount, Tariff
from vending.usage import IMPORT_PROFILE, kwh

from .customers import Bar, daily_kwh, meters_of, month_start
from .models import SimilarHomes

KINDS = ("day", "week", "month", "year")
TOU_PREFIX = "1-0:1.8."


@dataclass(frozen=True)
class Window:
    kind: str
    first: date
    last: date  # inclusive
    label: str
    previous: date
    following: date | None  # None: the period after has not begun


def _shift_year(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def window(kind: str, anchor: date, today: date | None = None) -> Window:
    """The `kind` period holding `anchor` (see the module's docstring)."""
    today = today or timezone.localdate()
    if kind == "day":
        first = last = anchor
        label = anchor.strftime("%A %d %B %Y")
        previous, following = anchor - timedelta(days=1), anchor + timedelta(days=1)
    elif kind == "week":
        first = anchor - timedelta(days=anchor.weekday())
        last = first + timedelta(days=6)
        label = f"Week of {first:%d %B %Y}"
        previous, following = first - timedelta(days=7), first + timedelta(days=7)
    elif kind == "month":
        first = anchor.replace(day=1)
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        label = first.strftime("%B %Y")
        previous, following = month_start(first, 1), last + timedelta(days=1)
    elif kind == "year":
        first, last = date(anchor.year, 1, 1), date(anchor.year, 12, 31)
        label = str(anchor.year)
        previous, following = date(anchor.year - 1, 1, 1), date(anchor.year + 1, 1, 1)
    else:
        raise ValueError(f"period is one of {', '.join(KINDS)}")
    return Window(kind, first, last, label, previous, following if following <= today else None)


def _hourly(customer: Customer, day: date) -> list[Bar]:
    zone = local_zone()
    start, end = day_bounds(day, zone)
    meters = list(meters_of(customer).values_list("pk", "meter_model_id"))
    channels = list(energy_channels({m for _, m in meters}, IMPORT_PROFILE)) if meters else []
    hours: dict[int, Decimal] = {}
    for meter_id, model_id in meters:
        for channel in (c for c in channels if c.meter_model_id == model_id):
            for ts, value, _flags in energy_series(meter_id, channel, start, end):
                energy = None if value is None else kwh(value, channel)
                if energy is None:
                    continue
                hour = (ts - timedelta(seconds=1)).astimezone(zone).hour  # the interval's start
                hours[hour] = hours.get(hour, Decimal(0)) + energy
    return [
        Bar(f"{h:02d}:00", datetime(day.year, day.month, day.day, h, tzinfo=zone), hours.get(h))
        for h in range(24)
    ]


def bars(customer: Customer, win: Window) -> list[Bar]:
    """The bars of the period, oldest first (kWh None: no readings)."""
    if win.kind == "day":
        return _hourly(customer, win.first)
    values = daily_kwh(customer, win.first, win.last)
    if win.kind == "year":
        totals: dict[int, Decimal] = {}
        for day, energy in values.items():
            totals[day.month] = totals.get(day.month, Decimal(0)) + energy
        return [
            Bar(
                date(win.first.year, m, 1).strftime("%Y-%m"),
                date(win.first.year, m, 1),
                totals.get(m),
            )
            for m in range(1, 13)
        ]
    days = [win.first + timedelta(days=i) for i in range((win.last - win.first).days + 1)]
    return [Bar(d.isoformat(), d, values.get(d)) for d in days]


def total(customer: Customer, first: date, last: date) -> Decimal | None:
    values = daily_kwh(customer, first, last)
    return sum(values.values(), Decimal(0)) if values else None


def grid_area(customer: Customer) -> GridNode | None:
    """The feeder above the customer's service point (its transformer if it has no feeder)."""
    ids = [int(p) for p in customer.service_point.path.strip("/").split("/") if p]
    above = {n.kind: n for n in GridNode.objects.filter(pk__in=ids[:-1])}
    return above.get(NodeKind.FEEDER) or above.get(NodeKind.TRANSFORMER)


def similar_homes(customer: Customer, win: Window) -> SimilarHomes | None:
    """The precomputed average home of the customer's class and grid area over the period
    (`portal.similar`; None: not computed, or no such homes). Read only, never computed."""
    area = grid_area(customer)
    if area is None:
        return None
    return (
        SimilarHomes.objects.filter(
            area=area, tariff_code=customer.tariff_code, kind=win.kind, first=win.first
        )
        .only("kwh", "homes", "computed_at")
        .first()
    )


@dataclass(frozen=True)
class Comparison:
    this: Decimal | None
    last_year: Decimal | None
    similar: Decimal | None
    similar_homes: int
    similar_as_of: datetime | None = None
    through: date | None = None  # the running period: compared up to this day, last year too
    this_days: int = 0  # days with readings
    last_year_days: int = 0
    kind: str = ""

    @property
    def last_year_short(self) -> bool:
        """Last year has readings on fewer days: a percentage would compare unlike spans."""
        return self.last_year is not None and self.last_year_days < self.this_days

    @property
    def versus_last_year(self) -> Decimal | None:
        if self.last_year_short or (self.kind == "day" and self.through is not None):
            return None  # today so far against a whole day says nothing
        return _percent(self.this, self.last_year)

    @property
    def versus_similar(self) -> Decimal | None:
        return _percent(self.this, self.similar)


def _percent(value, reference) -> Decimal | None:
    if value is None or not reference:
        return None
    return ((value - reference) * 100 / reference).quantize(Decimal("1"))


def compare(customer: Customer, win: Window, today: date | None = None) -> Comparison:
    """This period, the same days last year (so far, for the running period), similar homes."""
    today = today or timezone.localdate()
    through = min(win.last, today) if win.following is None else None
    this = daily_kwh(customer, win.first, win.last)
    last = daily_kwh(customer, _shift_year(win.first, -1), _shift_year(through or win.last, -1))
    similar = similar_homes(customer, win)
    return Comparison(
        this=sum(this.values(), Decimal(0)) if this else None,
        last_year=sum(last.values(), Decimal(0)) if last else None,
        similar=similar.kwh if similar else None,
        similar_homes=similar.homes if similar else 0,
        similar_as_of=similar.computed_at if similar else None,
        through=through,
        this_days=len(this),
        last_year_days=len(last),
        kind=win.kind,
    )


@dataclass(frozen=True)
class Rate:
    name: str
    kwh: Decimal
    share: Decimal


def time_of_use(customer: Customer, win: Window) -> list[Rate]:
    """kWh per TOU rate register over the period (empty: no rate register read twice in it)."""
    meters = list(meters_of(customer).values_list("pk", "meter_model_id"))
    channels = {
        c.pk: c
        for c in Channel.objects.filter(
            meter_model_id__in={m for _, m in meters}, obis__startswith=TOU_PREFIX, kind="register"
        ).exclude(obis__startswith=TOU_PREFIX + "0")
    }
    if not channels:
        return []
    start, _ = day_bounds(win.first, local_zone())
    _, end = day_bounds(win.last, local_zone())
    rows = (
        RegisterRead.objects.filter(
            meter_id__in=[pk for pk, _ in meters],
            channel_id__in=list(channels),
            read_at__gte=start,
            read_at__lte=end,  # the read at the closing midnight ends the period's change
        )
        .values("meter_id", "channel_id")
        .annotate(low=Min("value"), high=Max("value"), reads=Count("read_at"))
    )
    per_rate: dict[str, Decimal] = {}
    for row in rows:
        if row["reads"] < 2:
            continue  # one read has no change to tell
        channel = channels[row["channel_id"]]
        energy = kwh(row["high"] - row["low"], channel)
        if energy is not None:
            name = channel.name or channel.obis
            per_rate[name] = per_rate.get(name, Decimal(0)) + energy
    whole = sum(per_rate.values(), Decimal(0))
    return [
        Rate(name, value, (value * 100 / whole).quantize(Decimal("1")) if whole else Decimal(0))
        for name, value in sorted(per_rate.items())
    ]


@dataclass(frozen=True)
class Estimate:
    tariff: Tariff
    so_far_kwh: Decimal
    projected_kwh: Decimal
    energy: Decimal
    fixed: Decimal
    tax: Decimal
    days_seen: int  # the days the rate is taken from
    days_in_month: int
    basis_kwh: Decimal  # their energy

    @property
    def total(self) -> Decimal:
        return self.energy + self.fixed + self.tax


def tariff_of(customer: Customer) -> Tariff | None:
    """The prepaid account's tariff, else the tariff named by the customer's class."""
    account = PrepaidAccount.objects.filter(customer=customer).select_related("tariff").first()
    if account is not None:
        return account.tariff
    if not customer.tariff_code:
        return None
    ids = [int(p) for p in customer.organisation.path.strip("/").split("/") if p]
    return (
        Tariff.objects.filter(code=customer.tariff_code, organisation_id__in=ids)
        .order_by("-organisation__path")
        .first()
    )


def tariffs_of(customers: list[Customer]) -> dict[int, Tariff | None]:
    """{customer id: `tariff_of(customer)`} for many customers in two queries and one per
    (organisation, class) without a prepaid account."""
    out: dict[int, Tariff | None] = {}
    accounts = PrepaidAccount.objects.filter(customer__in=customers).select_related("tariff")
    for account in accounts.order_by("-pk"):  # the first (lowest pk) one wins, as .first()
        out[account.customer_id] = account.tariff
    by_class: dict[tuple, Tariff | None] = {}
    for customer in customers:
        if customer.pk in out:
            continue
        key = (customer.organisation_id, customer.tariff_code)
        if key not in by_class:
            by_class[key] = tariff_of(customer)  # no account: by class, one query
        out[customer.pk] = by_class[key]
    return out


def estimate(customer: Customer, today: date | None = None) -> Estimate | None:
    """This month's bill, estimated (see the module's docstring); None without tariff or data."""
    today = today or timezone.localdate()
    tariff = tariff_of(customer)
    if tariff is None:
        return None
    first = today.replace(day=1)
    so_far = total(customer, first, today)
    if so_far is None:
        return None
    basis, days_seen = so_far, 1  # the 1st: today so far
    if today > first:
        whole = total(customer, first, today - timedelta(days=1))
        if whole is not None:
            basis, days_seen = whole, (today - first).days
    days = calendar.monthrange(today.year, today.month)[1]
    projected = (basis * days / days_seen).quantize(Decimal("0.1"))
    try:
        energy, _lines = tariffs.energy_cost(projected, tariffs.blocks_of(tariff), Decimal(0))
    except SaleRefused:
        return None
    fixed = tariffs.money(tariff.fixed_charge_monthly)
    tax = tariffs.tax_on(fixed, tariff.tax_percent) + tariffs.tax_on(energy, tariff.tax_percent)
    return Estimate(tariff, so_far, projected, energy, fixed, tax, days_seen, days, basis)
