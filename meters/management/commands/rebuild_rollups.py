"""`manage.py rebuild_rollups [--model ID ...] [--meter SERIAL ...] [--missing-hours]`:
recompute the daily and hourly energy rollups.

* `--model` / `--meter`: for after a channel's accumulation (interval / cumulative) was
  changed on a meter model that already has data: the rollup rows of its profile channels
  are deleted and recomputed from the stored intervals, in one transaction per meter,
  through the same code as ingest;
* `--missing-hours`: fill the hourly rollup of every day that has a daily row but no hourly
  one (after upgrading to a release that keeps hours, or days the previous release wrote
  during a rolling upgrade), a block of `--block` meter ids per transaction: a killed run
  leaves each block filled or untouched and is simply run again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max, Min

from meters.choices import ChannelKind
from meters.models import Meter
from meters.store import DailyEnergy, HourlyEnergy, StoredInterval, rollups


class Command(BaseCommand):
    help = "Recompute the daily and hourly energy rollups of meters from their stored intervals."

    def add_arguments(self, parser):
        parser.add_argument("--model", type=int, action="append", default=[], help="meter model id")
        parser.add_argument("--meter", action="append", default=[], help="meter serial")
        parser.add_argument(
            "--missing-hours",
            action="store_true",
            help="fill the hourly rollup where a day has a daily row but no hourly one",
        )
        parser.add_argument(
            "--block", type=int, default=500, help="meter ids per transaction (--missing-hours)"
        )

    def handle(self, *args, model, meter, missing_hours, block, **options):
        if not model and not meter and not missing_hours:
            raise CommandError(
                "name meter models (--model) or meters (--meter), or --missing-hours"
            )
        if block < 1:
            raise CommandError("--block is at least 1")
        if model or meter:
            self._rebuild(model, meter)
        if missing_hours:
            self._fill_hours(block)

    def _rebuild(self, model, meter):
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
                for rollup in (DailyEnergy, HourlyEnergy):
                    rollup.objects.filter(
                        meter_id=meter_id, channel__kind=ChannelKind.PROFILE
                    ).delete()
                if span["first"] is not None:
                    rollups.refresh(rollups.days_touched({meter_id: (span["first"], span["last"])}))
            done += 1
        self.stdout.write(f"rollups rebuilt for {done} meters")

    def _fill_hours(self, block):
        bounds = Meter.objects.aggregate(first=Min("pk"), last=Max("pk"))
        if bounds["first"] is None:
            self.stdout.write("hourly rollup: no meters")
            return
        filled = 0
        for first in range(bounds["first"], bounds["last"] + 1, block):
            days = rollups.fill_missing_hours(first, first + block)
            filled += days
            if days:
                self.stdout.write(f"meters {first}-{first + block - 1}: {days} days filled")
        self.stdout.write(f"hourly rollup: {filled} days filled")
