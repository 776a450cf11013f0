"""Usage in the store for portal tests: daily rollups of imported energy, written directly."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from meters.models import Channel
from meters.store import DailyEnergy

IMPORT = "1-0:1.29.0*255"


def store_days(meter, days: int = 45, wh: int = 7_000) -> dict:
    """Daily rollups of imported energy for the last `days` local days (Wh: wh + day index)."""
    channel = Channel.objects.get(meter_model_id=meter.meter_model_id, obis=IMPORT)
    today = timezone.localdate()
    rows = {today - timedelta(days=i): wh + i * 37 for i in range(days)}  # distinct values per day
    DailyEnergy.objects.bulk_create(
        DailyEnergy(meter=meter, channel=channel, day=day, value=value, intervals=96)
        for day, value in rows.items()
    )
    return rows
