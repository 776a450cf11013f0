"""What a signed-in customer may see: their own customer record and what hangs on it.

Every portal view starts from `customer_of(request.user)`; every query below takes that
customer and filters by it, so customer A never reaches customer B's meters, accounts,
sales or usage, whatever id a URL carries (a foreign one is a 404, as an unknown one).

Usage comes from the store's daily rollups (`meters.store.DailyEnergy`) of imported
active energy, in the profile style of each meter's model (`1-0:1.29.0` per interval or
`1-0:1.8.0` captured cumulatively), summed over the meters at the customer's service point,
on the utility's local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from meters.alarms.events import EventKind
from meters.alarms.models import OPEN_STATES, Alarm
from meters.models import Customer, Meter
from meters.store import DailyEnergy
from meters.store.interval_energy import energy_channels
from vending.models import PrepaidAccount, Sale
from vending.usage import IMPORT_PROFILE, kwh

DAYS_SHOWN = 30
MONTHS_SHOWN = 12


def customer_of(user) -> Customer | None:
    """The customer record the user signs in for, or None (staff, or no record)."""
    if not user.is_authenticated:
        return None
    return (
        Customer.objects.select_related("service_point", "organisation")
        .filter(portal_user=user)
        .first()
    )


def meters_of(customer: Customer):
    return Meter.objects.filter(service_point_id=customer.service_point_id).order_by("serial")


def prepaid_accounts_of(customer: Customer):
    return PrepaidAccount.objects.filter(customer=customer).select_related("meter", "tariff")


def sales_of(customer: Customer):
    return (
        Sale.objects.filter(account__customer=customer)
        .select_related("account", "tariff", "organisation", "station", "sold_by")
        .prefetch_related("tokens")
        .order_by("-created_at", "-pk")
    )


def daily_kwh(customer: Customer, first: date, last: date) -> dict[date, Decimal]:
    """kWh imported per local day in [first, last] (days without readings are absent)."""
    meters = list(meters_of(customer).values_list("pk", "meter_model_id"))
    if not meters:
        return {}
    channels = {c.pk: c for c in energy_channels({m for _, m in meters}, IMPORT_PROFILE)}
    rows = DailyEnergy.objects.filter(
        meter_id__in=[pk for pk, _ in meters],
        channel_id__in=list(channels),
        day__gte=first,
        day__lte=last,
    ).values_list("channel_id", "day", "value")
    out: dict[date, Decimal] = {}
    for channel_id, day, value in rows:
        energy = kwh(value, channels[channel_id])
        if energy is not None:
            out[day] = out.get(day, Decimal(0)) + energy
    return out


@dataclass(frozen=True)
class Bar:
    """One period of usage: its label, first day and kWh (None: no readings)."""

    label: str
    start: date
    kwh: Decimal | None


def month_start(day: date, back: int = 0) -> date:
    """The first day of the month `back` months before `day`'s."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def daily_bars(customer: Customer, today: date | None = None) -> list[Bar]:
    """The last `DAYS_SHOWN` local days up to today, oldest first."""
    today = today or timezone.localdate()
    first = today - timedelta(days=DAYS_SHOWN - 1)
    values = daily_kwh(customer, first, today)
    days = [first + timedelta(days=i) for i in range(DAYS_SHOWN)]
    return [Bar(day.isoformat(), day, values.get(day)) for day in days]


def monthly_bars(customer: Customer, today: date | None = None) -> list[Bar]:
    """The last `MONTHS_SHOWN` months (this one so far included), oldest first."""
    today = today or timezone.localdate()
    starts = [month_start(today, back) for back in range(MONTHS_SHOWN - 1, -1, -1)]
    values = daily_kwh(customer, starts[0], today)
    totals: dict[date, Decimal] = {}
    for day, energy in values.items():
        key = day.replace(day=1)
        totals[key] = totals.get(key, Decimal(0)) + energy
    return [Bar(start.strftime("%Y-%m"), start, totals.get(start)) for start in starts]


def outage_alarms(customer: Customer):
    """Open power failures at the customer's service point or on its transformer."""
    point = customer.service_point
    nearby = Alarm.objects.filter(kind=EventKind.POWER_FAILURE, state__in=OPEN_STATES)
    if point.parent_id is None:
        return nearby.filter(service_point_id=point.pk)
    return nearby.filter(service_point__parent_id=point.parent_id)


@dataclass(frozen=True)
class Outage:
    """What the home page says about an outage: here or nearby, since when, how many."""

    at_home: bool
    since: object
    homes_off: int


def current_outage(customer: Customer) -> Outage | None:
    alarms = list(outage_alarms(customer).values_list("service_point_id", "first_event_at"))
    if not alarms:
        return None
    return Outage(
        at_home=any(sp == customer.service_point_id for sp, _ in alarms),
        since=min(first for _, first in alarms),
        homes_off=len({sp for sp, _ in alarms}),
    )
