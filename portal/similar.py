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
  they were (`day_rows`); stored as the day's average per home. The first run takes every day of the
  rollups back to `AMI_PORTAL_SIMILAR_HISTORY_DAYS` (800); later runs the days from
  `AMI_PORTAL_SIMILAR_LOOKBACK_DAYS` (7) before the last day stored (late reads change the
  recent days) up to today. A chunk's days are replaced in one transaction: a run killed
  half way leaves whole days, and the next run redoes what it had not reached.
* **Weeks (Monday to Sunday), months, years**: the sums of their days' averages (the most
  homes of a day as the count), for every period holding a recomputed day, replaced in one
  transaction per kind.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from meters.models import Customer, GridNode, Meter, MeterModel
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


HOMES_SQL = """
WITH per_point AS (
    SELECT service_point_id, COUNT(*) AS meters FROM {meter}
    WHERE service_point_id IS NOT NULL GROUP BY service_point_id
), homes AS (
    SELECT m.id AS meter_id, COALESCE(t.parent_id, sp.parent_id) AS area,
           c.tariff_code AS code, 1.0 / k.meters AS share
    FROM {meter} m
    JOIN per_point k ON k.service_point_id = m.service_point_id
    JOIN {node} sp ON sp.id = m.service_point_id
    LEFT JOIN {node} t ON t.id = sp.parent_id
    JOIN {customer} c ON c.service_point_id = sp.id
)
SELECT h.area, h.code, d.channel_id, d.day, SUM(d.value), SUM(h.share)
FROM {daily} d JOIN homes h ON h.meter_id = d.meter_id
WHERE d.channel_id IN ({channels}) AND d.day >= %s AND d.day <= %s AND h.area IS NOT NULL
GROUP BY h.area, h.code, d.channel_id, d.day
"""


def day_rows(channels: dict, first: date, last: date, now: datetime) -> list[SimilarHomes]:
    """The days' averages per area and class, from the rollups in one grouped statement.

    A rollup row counts for its home as 1 / the meters at the service point, so a day's
    homes are the service points with readings (exact when a home's meters all report)
    without a DISTINCT over the rows: the statement is one hash join and one hash
    aggregate (31 days of 1,000,000 meters are 31 M rows)."""
    sql = HOMES_SQL.format(
        meter=Meter._meta.db_table, node=GridNode._meta.db_table,
        customer=Customer._meta.db_table, daily=DailyEnergy._meta.db_table,
        channels=", ".join(["%s"] * len(channels)),
    )  # fmt: skip
    days: dict[tuple, list] = {}
    with connection.cursor() as cur:
        cur.execute(sql, [*channels, first, last])
        for area, code, channel_id, day, value, share in cur.fetchall():
            energy = kwh(value, channels[channel_id])
            if energy is None:
                continue
            if isinstance(day, str):  # SQLite
                day = date.fromisoformat(day)
            found = days.setdefault((area, code or "", day), [Decimal(0), Decimal(0)])
            found[0] += energy
            found[1] = max(found[1], Decimal(str(share)))  # one import channel a home
    return [
        SimilarHomes(
            area_id=area,
            tariff_code=code,
            kind="day",
            first=day,
            last=day,
            kwh=(energy / homes).quantize(Decimal("0.001")),
            homes=int(homes.quantize(Decimal(1))),
            computed_at=now,
        )  # fmt: skip
        for (area, code, day), (energy, homes) in days.items()
        if homes > 0
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


def _days(channels: dict, first: date, last: date, now: datetime) -> int:
    """Replace the days [first, last] (one transaction); how many rows."""
    rows = day_rows(channels, first, last, now)
    with transaction.atomic():
        SimilarHomes.objects.filter(kind="day", first__gte=first, first__lte=last).delete()
        SimilarHomes.objects.bulk_create(rows, batch_size=BATCH)
    return len(rows)


def compute(today: date | None = None, since: date | None = None, log=None, jobs: int = 1) -> int:
    """Recompute the days from `since` (default: see the module's docstring) to `today` and
    the weeks, months and years holding them; how many rows were written. `jobs` > 1: that
    many threads (each its own database connection) take the chunks of days side by side
    (a first run over a big fleet)."""
    today = today or timezone.localdate()
    now = timezone.now()
    channels = {
        c.pk: c
        for c in energy_channels(MeterModel.objects.values_list("pk", flat=True), IMPORT_PROFILE)
    }
    since = since or first_day(channels, today)
    if since is None or not channels:
        return 0
    chunks, first = [], since
    while first <= today:
        chunks.append((first, min(first + timedelta(days=CHUNK_DAYS - 1), today)))
        first = chunks[-1][1] + timedelta(days=1)

    def one(chunk: tuple[date, date]) -> int:
        count = _days(channels, *chunk, now)
        if log:
            log(f"similar homes: days {chunk[0]} to {chunk[1]}, {count} rows")
        return count

    def in_thread(chunk: tuple[date, date]) -> int:
        try:
            return one(chunk)
        finally:
            connection.close()  # this thread's own connection

    if jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            written = sum(pool.map(in_thread, chunks))
    else:
        written = sum(map(one, chunks))
    for kind in PERIODS:
        start, rows = period_rows(kind, since, now)
        with transaction.atomic():
            SimilarHomes.objects.filter(kind=kind, first__gte=start).delete()
            SimilarHomes.objects.bulk_create(rows, batch_size=BATCH)
        written += len(rows)
    return written
