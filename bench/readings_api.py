"""Benchmark: a page of `/api/readings/` from the store (`query.interval_rows_after`).

Runs on PostgreSQL in a throwaway database (`ami_bench_readings`, created, migrated and
dropped here, on the server of DATABASE_URL). Loads `--meters` meters (default 1,000) of
one organisation with a week of 15-minute intervals, 2 channels, in March 2025 (then
compacted, as a closed month is) and a week in April 2025 (left live).

Figures (JSON lines; A/B alternating, medians of wall time, as PostgreSQL's work is the cost):
a page of 1,000 rows at the start, the middle and the end of the fleet, compacted and live,
through the store's windowed read (A) vs the same page by one query over the intervals view
with the scope as a subquery (B, the first version). The ratio is A / B.

    .venv/bin/python bench/readings_api.py [--meters 1000] [--repeats 7] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as Column
from types import SimpleNamespace as Rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

BENCH_DB = "ami_bench_readings"
QH = timedelta(minutes=15)
COMPACTED = datetime(2025, 3, 3, tzinfo=UTC)
LIVE = datetime(2025, 4, 3, tzinfo=UTC)
DAYS = 7


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {"bench": "readings_api", "metric": metric, "value": round(value, 3), "unit": unit,
            "baseline": None if baseline is None else round(baseline, 3),
            "ratio": None if ratio is None else round(ratio, 3), **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def load(n_meters: int):
    from accounts.models import Organisation
    from meters.choices import ChannelKind
    from meters.models import Channel, Meter, MeterModel
    from meters.store import compaction
    from meters.store.writes import write_intervals

    org = Organisation.objects.create(name="Bench", code="bench")
    model = MeterModel.objects.create(manufacturer="Bench", name="2ch", organisation=org)
    for obis in ("1-0:1.29.0*255", "1-0:2.29.0*255"):
        Channel.objects.create(meter_model=model, obis=obis, name=obis, unit="Wh",
                               kind=ChannelKind.PROFILE, profile_obis="1-0:99.1.0*255")  # fmt: skip
    meters = Meter.objects.bulk_create(
        Meter(serial=f"B{i:07d}", meter_model=model, organisation=org, host="h")
        for i in range(n_meters)
    )
    for first in (COMPACTED, LIVE):
        stamps = [first + QH * (k + 1) for k in range(DAYS * 96)]
        zero = [0] * len(stamps)
        for at in range(0, n_meters, 200):
            write_intervals([
                Rows(meter_id=m.pk, group=0, timestamps=stamps, columns={
                    0: Column(values=[m.pk % 97 + k % 5 for k in range(len(stamps))], flags=zero),
                    1: Column(values=[7] * len(stamps), flags=zero),
                })
                for m in meters[at:at + 200]
            ])  # fmt: skip
    compaction.compact_month(COMPACTED.date())
    return org, sorted(m.pk for m in meters)


def baseline_page(meters, start, end, after, limit):
    """The first version: one query over the view, the scope as a subquery."""
    from meters.store import StoredInterval
    from meters.store.compaction import day_bounds

    rows = StoredInterval.objects.filter(
        ts__gt=start, ts__lte=end, meter_id__in=meters.values("pk"), **day_bounds(start, end)
    )
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return list(rows.order_by("meter_id", "group", "ts")[:limit])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = server_url()
    setup_django(url, BENCH_DB)
    try:
        from django.db import connection

        from accounts.models import User
        from meters.models import Meter
        from meters.store import query

        t0 = time.perf_counter()
        org, ids = load(args.meters)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        emit("load", time.perf_counter() - t0, "s", meters=args.meters)
        user = User.objects.create_superuser("bench", "b@example.org", "x")
        scoped = Meter.objects.restrict(user, "view")
        for label, first in (("compacted", COMPACTED), ("live", LIVE)):
            start, end = first - timedelta(days=1), first + timedelta(days=DAYS)
            for where, index in (("start", None), ("middle", len(ids) // 2), ("end", -3)):
                after = None if index is None else (ids[index], 0, first + QH * 200)
                a, b = [], []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    got = query.interval_rows_after(scoped, start, end, after=after, limit=1000)
                    a.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    want = baseline_page(scoped, start, end, after, 1000)
                    b.append(time.perf_counter() - t)
                    assert [(r.meter_id, r.ts) for r in got] == [(r.meter_id, r.ts) for r in want]
                ma, mb = statistics.median(a) * 1000, statistics.median(b) * 1000
                emit(f"page_1000_{label}_{where}", ma, "ms", mb, ma / mb, rows=len(got),
                     meters=args.meters, load=os.getloadavg()[0])  # fmt: skip
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
