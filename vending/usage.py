"""Credit use from AMI readings, shown next to the vending history.

For a prepaid meter that is also read remotely, the energy it registered over a period is
the sum of its daily rollups of imported active energy (its profile channel of +A in either
style: `1-0:1.29.0` per interval or `1-0:1.8.0` captured cumulatively, kept by ingest), or,
where the meter has no load profile, the difference of its `1-0:1.8.0` register reads.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from meters.models import Channel
from meters.store import DailyEnergy, RegisterRead
from meters.store.days import local_day
from meters.store.interval_energy import energy_channels

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
