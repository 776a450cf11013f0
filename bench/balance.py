"""Benchmark: energy balance per feeder per day for a month (issue 16: p95 <= 0.3 s).

Runs on PostgreSQL in a throwaway database (`AMI_BENCH_DB`, default `ami_bench`; created,
migrated and dropped here). Loads by COPY the grid of `bench/store_query.py` (feeders of 200
meters under one transformer each; 20,000 meters, quick 5,000) with a month (June 2026) of
daily rollup rows, plus one check meter per feeder and per transformer whose daily import is
the sum below it plus 5 % (feeder) or 3 % (transformer).

Figures (JSON lines, A/B alternating, medians / p95; ratio = A / B):

* `balance_feeder_month_p95`: `reports.balance.balances(user, [feeder], June)` (one feeder's
  daily balance: check meters, meters below, completeness, flags) for random feeders vs one
  raw SQL statement giving the same feeder's daily input and delivered sums; p95 over 40
  feeders (quick 20). Target: p95 <= 0.3 s.
* `balance_all_feeders_month`: every feeder's daily balance at once (the report page's
  whole table, not only one page of it) vs the raw statement for all feeders; 3 pairs.

Asserted: the figures of the first feeder on the first day against the closed form, and
the loss at 5 % of the input for every complete feeder-day.

    .venv/bin/python bench/balance.py [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402
from bench.ingest import BENCH_DB  # noqa: E402
from bench.store_query import DAYS, MONTH, base, copy, load_rollups, make_grid  # noqa: E402

RAW = """
    SELECT d.day,
           SUM(SIGN) FILTER (WHERE m.check_node_id = %(node)s),
           SUM(SIGN) FILTER (WHERE m.check_node_id IS NULL)
    FROM meters_dailyenergy d
    JOIN meters_channel c ON c.id = d.channel_id
    JOIN meters_meter m ON m.id = d.meter_id
    LEFT JOIN meters_gridnode sp ON sp.id = m.service_point_id
    LEFT JOIN meters_gridnode t ON t.id = sp.parent_id
    WHERE c.obis IN ('1-0:1.29.0*255', '1-0:2.29.0*255')
      AND d.day >= %(first)s AND d.day <= %(last)s
      AND (m.check_node_id = %(node)s OR t.parent_id = %(node)s)
    GROUP BY d.day
""".replace("SIGN", "CASE WHEN c.obis = '1-0:1.29.0*255' THEN d.value ELSE -d.value END")
RAW_ALL = """
    SELECT COALESCE(m.check_node_id, t.parent_id) AS feeder, d.day, SUM(d.value)
    FROM meters_dailyenergy d
    JOIN meters_channel c ON c.id = d.channel_id
    JOIN meters_meter m ON m.id = d.meter_id
    LEFT JOIN meters_gridnode sp ON sp.id = m.service_point_id
    LEFT JOIN meters_gridnode t ON t.id = sp.parent_id
    WHERE c.obis IN ('1-0:1.29.0*255', '1-0:2.29.0*255')
      AND d.day >= %(first)s AND d.day <= %(last)s
    GROUP BY 1, 2, m.check_node_id IS NULL
"""


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {
        "bench": "balance",
        "metric": metric,
        "value": round(value, 4),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 4),
        "ratio": None if ratio is None else round(ratio, 3),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def p95(samples):
    return statistics.quantiles(samples, n=20)[18]


def day_import(meter_ids) -> int:
    """A day's import of these meters as `load_rollups` writes it (column 0)."""
    return sum(96 * base(m, 0) + 144 for m in meter_ids)


def add_check_meters(meters, channels, feeders) -> dict[int, int]:
    """A check meter per feeder (5 % above the sum below) and per transformer (3 %), with a
    month of daily rows for import and export; {feeder id: daily import of its check}."""
    from django.db import connection, transaction

    from meters.choices import NodeKind
    from meters.models import GridNode, Meter

    model = channels[0].meter_model
    per_feeder = len(meters) // len(feeders)
    made, daily = [], {}
    for f, feeder in enumerate(feeders):
        below = meters[f * per_feeder : (f + 1) * per_feeder]
        total = day_import(below)
        transformer = GridNode.objects.get(parent=feeder, kind=NodeKind.TRANSFORMER)
        for node, value in ((feeder, total * 105 // 100), (transformer, total * 103 // 100)):
            check = Meter(
                serial=f"CHK{node.pk}",
                meter_model=model,
                organisation=feeder.organisation,
                check_node=node,
            )
            made.append((check, value))
        daily[feeder.pk] = total * 105 // 100
    Meter.objects.bulk_create([m for m, _v in made], batch_size=2000)
    row = struct.Struct(">hiqiqiiiqihih")
    epoch_day = date(2000, 1, 1)
    days = [(MONTH.date() + timedelta(days=d) - epoch_day).days for d in range(DAYS)]
    parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    for meter, value in made:
        for ch, v in ((channels[0], value), (channels[1], 0)):
            for d in days:
                parts.append(row.pack(6, 8, meter.pk, 8, ch.pk, 4, d, 8, v, 2, 96, 2, 0))
    parts.append(struct.pack(">h", -1))
    with transaction.atomic(), connection.cursor() as cur:
        copy(
            cur,
            "COPY meters_dailyenergy (meter_id, channel_id, day, value, intervals, "
            "estimated) FROM STDIN (FORMAT binary)",
            b"".join(parts),
        )
        cur.execute("ANALYZE meters_dailyenergy")
        cur.execute("ANALYZE meters_meter")
        cur.execute("ANALYZE meters_gridnode")
    return daily


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="under a minute")
    p.add_argument("--keep", action="store_true", help="keep the bench database")
    args = p.parse_args()
    url = server_url()
    setup_django(url, BENCH_DB)
    try:
        run(args.quick)
    finally:
        if not args.keep:
            drop_database(url, BENCH_DB)


def run(quick: bool) -> None:
    from django.db import connection

    from accounts.models import User
    from reports import balance
    from reports.billing import Period

    n_meters = 5_000 if quick else 20_000
    t0 = time.perf_counter()
    meters, channels, feeders = make_grid(n_meters)
    rows = load_rollups(meters, channels)
    check_daily = add_check_meters(meters, channels, feeders)
    load_s = time.perf_counter() - t0
    user = User.objects.create_superuser("bench", "b@example.invalid", "x")
    emit("loaded", rows, "rollup rows", meters=n_meters, feeders=len(feeders),
         load_s=round(load_s, 1), cpus=os.cpu_count(), load_avg=os.getloadavg()[0])  # fmt: skip
    period = Period(MONTH.date(), MONTH.date() + timedelta(days=DAYS - 1))
    params = {"first": period.first, "last": period.last}
    raw = connection.cursor().cursor
    nodes = balance.nodes_for(user, kind="feeder")

    # Correctness: the first feeder, first day, against the closed form.
    f0 = feeders[0]
    b0 = balance.balances(user, [f0], period)[0]
    day0 = b0.buckets[0]
    delivered = day_import(meters[:200])
    export = sum(96 * base(m, 1) + 144 for m in meters[:200])
    assert day0.complete, day0
    assert day0.input == Decimal(check_daily[f0.pk]), (day0.input, check_daily[f0.pk])
    assert day0.delivered == Decimal(delivered - export), (day0.delivered, delivered - export)

    rng = random.Random(11)
    samples = 20 if quick else 40
    a_times, b_times = [], []
    for _ in range(samples):
        feeder = rng.choice(feeders)
        t = time.perf_counter()
        result = balance.balances(user, [feeder], period)[0]
        a_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw.execute(RAW, {**params, "node": feeder.pk})
        raw_rows = raw.fetchall()
        b_times.append(time.perf_counter() - t)
        assert len(result.buckets) == len(raw_rows) == DAYS
        assert result.complete_buckets == DAYS
    a95, b95 = p95(a_times), p95(b_times)
    emit("balance_feeder_month_p95", a95, "s", b95, a95 / b95, samples=samples,
         median_s=round(statistics.median(a_times), 4), meters=n_meters, target_s=0.3,
         load_avg=os.getloadavg()[0])  # fmt: skip

    a_all, b_all = [], []
    for _ in range(3):
        t = time.perf_counter()
        results = balance.balances(user, nodes, period)
        a_all.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw.execute(RAW_ALL, params)
        raw.fetchall()
        b_all.append(time.perf_counter() - t)
    assert len(results) == len(feeders)
    assert all(r.total.input and r.total.loss is not None for r in results)
    a_med, b_med = statistics.median(a_all), statistics.median(b_all)
    emit("balance_all_feeders_month", a_med, "s", b_med, a_med / b_med, pairs=3,
         feeders=len(feeders), meters=n_meters, load_avg=os.getloadavg()[0])  # fmt: skip
    print(
        f"\nbalance ({n_meters:,} meters, {len(feeders)} feeders, a month of daily rollups, "
        f"load average {os.getloadavg()[0]:.1f}):\n"
        f"  one feeder, daily for a month  p95 {a95:.3f} s vs raw SQL {b95:.3f} s "
        f"(target 0.3 s)\n"
        f"  every feeder at once           {a_med:.3f} s vs raw SQL {b_med:.3f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
