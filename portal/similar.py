"""Similar homes, precomputed: the average home per grid area, customer class and period.

The usage views compare a customer's period with "similar homes": the homes of the same
customer class (`Customer.tariff_code`) in the same grid area (the feeder above the service
point; its transformer where there is no feeder). Computing that on a page view reads a
feeder's thousand meters for the period, so it is computed here ahead of time and stored
(`portal.models.SimilarHomes`, a table: a restart costs no page anything) and the views
only read one row (`portal.usage.similar_homes`), shown with its "as of" time.

`compute` (the beat task `portal.compute_similar_homes`, hourly, and the demo's seeding):

* **Days**: one grouped statement per chunk of `CHUNK_DAYS` local days over the daily
  rollups of imported energy (`meters.store.DailyEnergy`) joined to the homes' area and
  class: per area, class and day, the kWh over the homes with readings that day and how many
  they were; stored as the day's average per home. The first run takes every day of the
  rollups back to `AMI_PORTAL_SIMILAR_HISTORY_DAYS` (800); later runs the days from
  `AMI_PORTAL_SIMILAR_LOOKBACK_DAYS` (7) before the last day stored (late reads change the
  recent days) up to today. A chunk's days are replaced in one transaction: a run killed
  half way leaves whole days, and the next run redoes what it had not reached.
* **Weeks (Monday to Sunday), months, years**: the sums of their days' averages (the most
  homes of a day as the count), for every period holding a recomputed day, replaced in one
  transaction per kind.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Min, Sum
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from meters.models import MeterModel
from meters.store import DailyEnergy
from meters.store.interval_energy import energy_channels
from vending.usage import IMPORT_PROFILE, kwh

from .models import SimilarHomes

CHUNK_DAYS = 31
PERIODS = ("week", "month", "year")
BATCH = 2000


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _period(kind: str, day: date) -> tuple[date, date]:
    """(first, last) of the `kind` period holding `day` (as `portal.usage.window` names it)."""
    if kind == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if kind == "month":
        first = day.replace(day=1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, following - timedelta(days=1)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def first_day(channels, today: date) -> date | None:
    """The first day a run recomputes (None: no rollups at all)."""
    latest = SimilarHomes.objects.filter(kind="day").aggregate(day=Max("first"))["day"]
    if latest is not None:
        return min(latest, today) - timedelta(days=_setting("AMI_PORTAL_SIMILAR_LOOKBACK_DAYS", 7))
    oldest = today - timedelta(days=_setting("AMI_PORTAL_SIMILAR_HISTORY_DAYS", 800))
    earliest = (
        DailyEnergy.objects.filter(channel_id__in=list(channels), day__gte=oldest)
        .aggregate(day=Min("day"))["day"]
    )  # fmt: skip
    return earliest


def day_rows(channels: dict, first: date, last: date, now: datetime) -> list[SimilarHomes]:
    """The days' averages per area and class, from the rollups in one grouped statement."""
    point = "meter__service_point"
    rows = (
        DailyEnergy.objects.filter(
            channel_id__in=list(channels), day__gte=first, day__lte=last,
            **{f"{point}__customers__isnull": False},
        )
        .annotate(area=Coalesce(f"{point}__parent__parent_id", f"{point}__parent_id"))
        .filter(area__isnull=False)
        .values("area", "day", "channel_id", code=F(f"{point}__customers__tariff_code"))
        .annotate(value=Sum("value"), homes=Count(point, distinct=True))
        .order_by()
    )  # fmt: skip
    days: dict[tuple, list] = {}
    for row in rows.iterator(chunk_size=5000):
        energy = kwh(row["value"], channels[row["channel_id"]])
        if energy is None:
            continue
        found = days.setdefault((row["area"], row["code"] or "", row["day"]), [Decimal(0), 0])
        found[0] += energy
        found[1] = max(found[1], row["homes"])  # one import channel per home in practice
    return [
        SimilarHomes(
            area_id=area,
            tariff_code=code,
            kind="day",
            first=day,
            last=day,
            kwh=(energy / homes).quantize(Decimal("0.001")),
            homes=homes,
            computed_at=now,
        )  # fmt: skip
        for (area, code, day), (energy, homes) in days.items()
        if homes
    ]


def period_rows(kind: str, since: date, now: datetime) -> tuple[date, list[SimilarHomes]]:
    """(first day replaced, rows) of the `kind` periods from the one holding `since`."""
    start = _period(kind, since)[0]
    rows = (
        SimilarHomes.objects.filter(kind="day", first__gte=start)
        .annotate(period=Trunc("first", kind))
        .values("area_id", "tariff_code", "period")
        .annotate(total=Sum("kwh"), most=Max("homes"))
        .order_by()
    )
    out = []
    for row in rows:
        begins = row["period"].date() if isinstance(row["period"], datetime) else row["period"]
        out.append(
            SimilarHomes(
                area_id=row["area_id"],
                tariff_code=row["tariff_code"],
                kind=kind,
                first=begins,
                last=_period(kind, begins)[1],
                kwh=Decimal(row["total"]).quantize(Decimal("0.001")),
                homes=row["most"],
                computed_at=now,
            )  # fmt: skip
        )
    return start, out


def compute(today: date | None = None, since: date | None = None, log=None) -> int:
    """Recompute the days from `since` (default: see the module's docstring) to `today` and
    the weeks, months and years holding them; how many rows were written."""
    today = today or timezone.localdate()
    now = timezone.now()
    channels = {
        c.pk: c
        for c in energy_channels(MeterModel.objects.values_list("pk", flat=True), IMPORT_PROFILE)
    }
    since = since or first_day(channels, today)
    if since is None or not channels:
        return 0
    written = 0
    first = since
    while first <= today:
        last = min(first + timedelta(days=CHUNK_DAYS - 1), today)
        rows = day_rows(channels, first, last, now)
        with transaction.atomic():
            SimilarHomes.objects.filter(kind="day", first__gte=first, first__lte=last).delete()
            SimilarHomes.objects.bulk_create(rows, batch_size=BATCH)
        written += len(rows)
        if log:
            log(f"similar homes: days {first} to {last}, {len(rows)} rows")
        first = last + timedelta(days=1)
    for kind in PERIODS:
        start, rows = period_rows(kind, since, now)
        with transaction.atomic():
            SimilarHomes.objects.filter(kind=kind, first__gte=start).delete()
            SimilarHomes.objects.bulk_create(rows, batch_size=BATCH)
        written += len(rows)
    return written
