"""`manage.py rebuild_rollups [--model ID ...] [--meter SERIAL ...]`: recompute daily energy.

For after a channel's accumulation (interval / cumulative) was changed on a meter model that
already has data: the rollup rows of its profile channels are recomputed from the stored
intervals, in one transaction per meter, through the same code as ingest.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max, Min

from meters.choices import ChannelKind
from meters.models import Meter
from meters.store import DailyEnergy, StoredInterval, rollups


class Command(BaseCommand):
    help = "Recompute the daily energy rollups of meters from their stored intervals."

    def add_arguments(self, parser):
        parser.add_argument("--model", type=int, action="append", default=[], help="meter model id")
        parser.add_argument("--meter", action="append", default=[], help="meter serial")

    def handle(self, *args, model, meter, **options):
        if not model and not meter:
            raise CommandError("name meter models (--model) or meters (--meter)")
        meters = Meter.objects.none()
        if model:
            meters |= Meter.objects.filter(meter_model_id__in=model)
        if meter:
            meters |= Meter.objects.filter(serial__in=meter)
        done = 0
        for meter_id in meters.order_by("pk").values_list("pk", flat=True):
            span = StoredInterval.objects.filter(meter_id=meter_id).aggregate(
                first=Min("ts"), last=Max("ts")
            )
            with transaction.atomic():
                DailyEnergy.objects.filter(
                    meter_id=meter_id, channel__kind=ChannelKind.PROFILE
                ).delete()
                if span["first"] is not None:
                    rollups.refresh(rollups.days_touched({meter_id: (span["first"], span["last"])}))
            done += 1
        self.stdout.write(f"rollups rebuilt for {done} meters")
