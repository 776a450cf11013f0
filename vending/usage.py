"""Credit use from AMI readings, shown next to the vending history.

For a prepaid meter that is also read remotely, the energy it registered over a period is
the sum of its daily rollups of imported active energy (its profile channel of +A in either
style: `1-0:1.29.0` per interval or `1-0:1.8.0` captured cumulatively, kept by ingest), or,
where the meter has no load profile, the difference of its `1-0:1.8.0` register reads.

The head-end's estimate of the credit left (:func:`credit_estimate`): kWh of the account's
completed sales minus what its meter registered since the first of them, and how many days
that lasts at the meter's use of the last `RATE_DAYS` whole local days that have readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Min, Sum

from meters.models import Channel
from meters.store import DailyEnergy, RegisterRead
from meters.store.days import local_day
from meters.store.interval_energy import energy_channels

from .choices import SaleStatus

NO_READINGS_MESSAGE = "No AMI readings for this meter in the period yet."
IMPORT_PROFILE = "1-0:1.29.0*255"
IMPORT_REGISTER = "1-0:1.8.0*255"
KWH = {"wh": Decimal("0.001"), "kwh": Decimal(1), "mwh": Decimal(1000)}


def kwh(stored: int, channel) -> Decimal | None:
    factor = KWH.get((channel.unit or "").lower())
    if factor is None:
        return None
    return (Decimal(stored).scaleb(channel.scaler) * factor).quantize(Decimal("0.001"))


def energy_used(meter, since: datetime, until: datetime) -> Decimal | None:
    """kWh imported by `meter` in [since, until), or None where no readings are stored."""
    channels = {
        c.obis: c
        for c in Channel.objects.filter(meter_model_id=meter.meter_model_id, kind="register")
    }
    profile = energy_channels([meter.meter_model_id], IMPORT_PROFILE).first()
    if profile is not None:
        total = DailyEnergy.objects.filter(
            meter=meter, channel=profile, day__gte=local_day(since), day__lte=local_day(until)
        ).aggregate(total=Sum("value"))["total"]
        if total is not None:
            return kwh(total, profile)
    register = channels.get(IMPORT_REGISTER)
    if register is None:
        return None
    reads = RegisterRead.objects.filter(
        meter=meter, channel=register, read_at__gte=since, read_at__lt=until
    ).order_by("read_at")
    first, last = reads.first(), reads.last()
    if first is None or first.pk == last.pk:
        return None
    return kwh(last.value - first.value, register)


RATE_DAYS = 14  # the recent use the estimate goes by


def remaining_kwh(account, now: datetime) -> Decimal | None:
    """kWh bought minus kWh registered since the first sale; None without sales or readings."""
    sales = account.sales.filter(status=SaleStatus.COMPLETED).aggregate(
        kwh=Sum("energy_kwh"), first=Min("created_at")
    )
    if sales["first"] is None:
        return None
    used = energy_used(account.meter, sales["first"], now)
    return None if used is None else sales["kwh"] - used


def daily_use(meter, now: datetime, days: int = RATE_DAYS) -> tuple[Decimal, Decimal] | None:
    """(kWh a day, days measured) over the last `days` whole local days before today that
    have readings (daily rollups of +A), else over the register reads of the same span;
    None without readings (or with reads less than an hour apart)."""
    today = local_day(now)
    profile = energy_channels([meter.meter_model_id], IMPORT_PROFILE).first()
    if profile is not None:
        found = DailyEnergy.objects.filter(
            meter=meter, channel=profile, day__gte=today - timedelta(days=days), day__lt=today
        ).aggregate(total=Sum("value"), days=Count("day"))
        if found["days"]:
            used = kwh(found["total"], profile)
            if used is not None:
                return (used / found["days"]).quantize(Decimal("0.001")), Decimal(found["days"])
    register = Channel.objects.filter(
        meter_model_id=meter.meter_model_id, kind="register", obis=IMPORT_REGISTER
    ).first()
    if register is None:
        return None
    reads = RegisterRead.objects.filter(
        meter=meter, channel=register, read_at__gte=now - timedelta(days=days), read_at__lt=now
    ).order_by("read_at")
    first, last = reads.first(), reads.last()
    if first is None:
        return None
    span = Decimal((last.read_at - first.read_at).total_seconds()) / 86400
    used = kwh(last.value - first.value, register)
    if span < Decimal(1) / 24 or used is None:
        return None
    return (used / span).quantize(Decimal("0.001")), span.quantize(Decimal("0.1"))


@dataclass(frozen=True)
class CreditEstimate:
    remaining_kwh: Decimal
    kwh_per_day: Decimal | None  # None: no recent readings
    days_measured: Decimal | None
    days_left: Decimal | None  # None: no use to go by (no readings, or none used)
    runs_out: datetime | None


def credit_estimate(account, now: datetime) -> CreditEstimate | None:
    """How long the account's credit lasts at its recent use; None without sales or
    readings."""
    remaining = remaining_kwh(account, now)
    if remaining is None:
        return None
    rate = daily_use(account.meter, now)
    if rate is None or rate[0] <= 0:
        return CreditEstimate(remaining, rate and rate[0], rate and rate[1], None, None)
    per_day, measured = rate
    days_left = (max(remaining, Decimal(0)) / per_day).quantize(Decimal("0.1"))
    runs_out = now + timedelta(days=float(days_left))
    return CreditEstimate(remaining, per_day, measured, days_left, runs_out)
