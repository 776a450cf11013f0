"""Benchmark: reading the measurement store.

Runs on PostgreSQL in a throwaway database (`ami_bench`, created, migrated and dropped here,
on the server of DATABASE_URL). Loads, by COPY straight into the store's tables:

* a grid of feeders with 20,000 meters (quick: 5,000), each with a month (June 2026) of
  daily rollup rows for its 4 profile channels;
* a month of 15-minute intervals, 4 channels, for the first meters: >= 50 M values in the
  full run (quick: about 5.8 M).

Figures (JSON lines, A/B alternating, medians; the ratio is A / B):

* `meter_channel_month_p95`: one meter's channel for one month (2,880 values) through the
  project's `meters.store.query.raw_series` (Django) vs the same rows by a raw psycopg query;
* `feeder_day_month`: a day's energy per feeder for the month over all meters through
  `meters.store.rollups.feeder_daily_energy` (daily rollup) vs the same answer computed from the
  interval table by one raw SQL aggregate.

    .venv/bin/python bench/store_query.py [--quick] [--keep]
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
from datetime import UTC, date, datetime, timedelta
from itertools import repeat
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amisite import pgbulk  # noqa: E402
from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402
from bench.ingest import BENCH_DB, CHANNELS  # noqa: E402

MONTH = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 30
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
QH_US = 900 * 1_000_000


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {
        "bench": "store_query",
        "metric": metric,
        "value": round(value, 4),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 4),
        "ratio": None if ratio is None else round(ratio, 3),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def base(meter_id: int, column: int) -> int:
    return 10 + (meter_id * 7 + column * 13) % 90


def interval_value(meter_id: int, column: int, k: int) -> int:
    """Value of interval k (0-based in the month); a day sums to 96 * base + 144."""
    return base(meter_id, column) + k % 4


def make_grid(n_meters: int, per_feeder: int = 200):
    from django.db import connection

    from accounts.models import Organisation
    from meters.choices import ChannelKind, NodeKind
    from meters.models import Channel, GridNode, Meter, MeterModel

    org = Organisation.objects.create(name="Bench", code="bench")
    model = MeterModel.objects.create(manufacturer="Bench", name="4ch", organisation=org)
    for obis, unit in CHANNELS:
        Channel.objects.create(
            meter_model=model,
            obis=obis,
            name=obis,
            unit=unit,
            kind=ChannelKind.PROFILE,
            profile_obis="1-0:99.1.0*255",
        )
    region = GridNode.objects.create(kind=NodeKind.REGION, name="R", code="R", organisation=org)
    sub = GridNode.objects.create(
        kind=NodeKind.SUBSTATION, name="S", code="S", organisation=org, parent=region
    )
    n_feeders = (n_meters + per_feeder - 1) // per_feeder
    feeders = []
    for f in range(n_feeders):
        feeder = GridNode.objects.create(
            kind=NodeKind.FEEDER, name=f"F{f}", code=f"F{f}", organisation=org, parent=sub
        )
        tr = GridNode.objects.create(
            kind=NodeKind.TRANSFORMER,
            name=f"T{f}",
            code=f"T{f}",
            organisation=org,
            parent=feeder,
        )
        feeders.append((feeder, tr))
    points = []
    for i in range(n_meters):
        _, tr = feeders[i // per_feeder]
        points.append(
            GridNode(
                kind=NodeKind.SERVICE_POINT,
                name=f"SP{i}",
                code=f"SP{i}",
                organisation=org,
                parent=tr,
            )
        )
    GridNode.objects.bulk_create(points, batch_size=5000)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE meters_gridnode sp SET path = t.path || sp.id || '/' FROM meters_gridnode t "
            "WHERE sp.parent_id = t.id AND sp.kind = 'service_point'"
        )
    points = list(GridNode.objects.filter(kind=NodeKind.SERVICE_POINT).order_by("pk"))
    Meter.objects.bulk_create(
        [
            Meter(serial=f"Q{i:07d}", meter_model=model, organisation=org, service_point=sp)
            for i, sp in enumerate(points)
        ],
        batch_size=5000,
    )
    meters = list(Meter.objects.order_by("pk").values_list("pk", flat=True))
    channels = list(Channel.objects.filter(meter_model=model).order_by("profile_column"))
    return meters, channels, [f for f, _ in feeders]


def copy(cur, sql: str, data: bytes) -> None:
    pgbulk.copy_in(cur, sql, data)


def load_intervals(meters: list[int]) -> int:
    """A month of intervals for `meters`, binary COPY into the partitioned table."""
    from django.db import connection, transaction

    from meters.store import partitions

    partitions.ensure_month(MONTH.date())
    row = struct.Struct(">hiqiqiqiqiqiqiqih")
    start_us = (MONTH - PG_EPOCH) // timedelta(microseconds=1)
    n = DAYS * 96
    ts = [start_us + (k + 1) * QH_US for k in range(n)]
    mod4 = [k % 4 for k in range(n)]
    rows = 0
    for i in range(0, len(meters), 200):
        parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
        for m in meters[i : i + 200]:
            cols = [[base(m, c) + x for x in mod4] for c in range(4)]
            e = repeat(8)
            parts.append(
                b"".join(
                    map(
                        row.pack,
                        repeat(8),
                        e,
                        repeat(m),
                        e,
                        ts,
                        e,
                        repeat(0),
                        e,
                        cols[0],
                        e,
                        cols[1],
                        e,
                        cols[2],
                        e,
                        cols[3],
                        repeat(2),
                        repeat(0),
                    )
                )
            )
            rows += n
        parts.append(struct.pack(">h", -1))
        with transaction.atomic(), connection.cursor() as cur:
            copy(
                cur,
                "COPY meters_intervalreading (meter_id, ts, q, v0, v1, v2, v3, grp) "
                "FROM STDIN (FORMAT binary)",
                b"".join(parts),
            )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE meters_intervalreading")
    return rows * 4


def load_rollups(meters: list[int], channels) -> int:
    from django.db import connection, transaction

    row = struct.Struct(">hiqiqiiiqihih")
    epoch_day = date(2000, 1, 1)
    days = [(MONTH.date() + timedelta(days=d) - epoch_day).days for d in range(DAYS)]
    parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    for m in meters:
        for ch in channels:
            value = 96 * base(m, ch.profile_column) + 144
            for d in days:
                parts.append(row.pack(6, 8, m, 8, ch.pk, 4, d, 8, value, 2, 96, 2, 0))
    parts.append(struct.pack(">h", -1))
    with transaction.atomic(), connection.cursor() as cur:
        copy(
            cur,
            "COPY meters_dailyenergy (meter_id, channel_id, day, value, intervals, "
            "estimated) FROM STDIN (FORMAT binary)",
            b"".join(parts),
        )
        cur.execute("ANALYZE meters_dailyenergy")
    return len(meters) * len(channels) * DAYS


RAW_POINT = (
    "SELECT ts, v{c}, q FROM meters_intervalreading "
    "WHERE meter_id = %s AND grp = %s AND ts > %s AND ts <= %s ORDER BY ts"
)
RAW_FEEDER = """
    SELECT f.id, ((r.ts - interval '1 microsecond') AT TIME ZONE 'UTC')::date AS day, sum(r.v0)
    FROM meters_intervalreading r
    JOIN meters_meter m ON m.id = r.meter_id
    JOIN meters_gridnode sp ON sp.id = m.service_point_id
    JOIN meters_gridnode f ON f.kind = 'feeder' AND sp.path LIKE f.path || '%%'
    WHERE r.grp = 0 AND r.ts > %s AND r.ts <= %s
    GROUP BY 1, 2
"""


def p95(samples):
    return statistics.quantiles(samples, n=20)[18]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="under a minute")
    p.add_argument("--keep", action="store_true", help="keep the ami_bench database")
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

    from meters.store.query import raw_series
    from meters.store.rollups import feeder_daily_energy

    n_meters = 5_000 if quick else 20_000
    with_intervals = 500 if quick else 4_400
    t0 = time.perf_counter()
    meters, channels, feeders = make_grid(n_meters)
    values = load_intervals(meters[:with_intervals])
    rollup_rows = load_rollups(meters, channels)
    load_s = time.perf_counter() - t0
    emit(
        "stored_values",
        values,
        "values",
        meters=n_meters,
        meters_with_intervals=with_intervals,
        rollup_rows=rollup_rows,
        load_s=round(load_s, 1),
        cpus=os.cpu_count(),
    )

    # One meter's channel for one month: A = raw_series (Django), B = raw psycopg.
    rng = random.Random(7)
    start, end = MONTH, MONTH + timedelta(days=DAYS)
    a_times, b_times = [], []
    samples = 100 if quick else 300
    raw = connection.cursor().cursor
    for _ in range(samples):
        m = rng.choice(meters[:with_intervals])
        ch = rng.choice(channels)
        t = time.perf_counter()
        series = list(raw_series(m, ch, start, end))
        a_times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        raw.execute(RAW_POINT.format(c=ch.profile_column), [m, ch.profile_group, start, end])
        rows = raw.fetchall()
        b_times.append((time.perf_counter() - t) * 1000)
        assert len(series) == len(rows) == DAYS * 96
        c = ch.profile_column
        assert int(series[5].value) == rows[5][1] == interval_value(m, c, 5)
    a95, b95 = p95(a_times), p95(b_times)
    emit(
        "meter_channel_month_p95",
        a95,
        "ms",
        b95,
        a95 / b95,
        samples=samples,
        median_ms=round(statistics.median(a_times), 3),
        target_ms=10,
    )

    # A day's energy per feeder for the month: A = rollup (project API), B = raw intervals.
    obis = channels[0].obis
    last = MONTH.date() + timedelta(days=DAYS - 1)
    a_feeder, b_feeder = [], []
    pairs = 3
    for _ in range(pairs):
        t = time.perf_counter()
        answer = feeder_daily_energy(obis, MONTH.date(), last)
        a_feeder.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw.execute(RAW_FEEDER, [start, end])
        raw_rows = raw.fetchall()
        b_feeder.append(time.perf_counter() - t)
    assert len(answer) == len(feeders) * DAYS
    f0 = feeders[0]
    expected = sum(96 * base(m, 0) + 144 for m in meters[:200])  # the first feeder's meters
    assert answer[(f0.pk, MONTH.date())] == expected, (answer[(f0.pk, MONTH.date())], expected)
    raw_f0 = {(f, d): int(s) for f, d, s in raw_rows}
    assert raw_f0[(f0.pk, MONTH.date())] == expected  # rollup and intervals agree
    a_med, b_med = statistics.median(a_feeder), statistics.median(b_feeder)
    emit(
        "feeder_day_month",
        a_med,
        "s",
        b_med,
        a_med / b_med,
        pairs=pairs,
        meters=n_meters,
        feeders=len(feeders),
        raw_over_meters=with_intervals,
        target_s=2,
    )
    print(
        f"\nstore_query ({values:,} interval values, {n_meters:,} meters, "
        f"{os.cpu_count()} CPUs, load {load_s:.0f} s):\n"
        f"  meter channel month p95   {a95:8.2f} ms (raw_series) vs {b95:.2f} ms raw psycopg\n"
        f"  feeder x day, one month   {a_med:8.3f} s  (rollup, {n_meters:,} meters) vs "
        f"{b_med:.2f} s raw intervals ({with_intervals:,} meters)",
        flush=True,
    )


if __name__ == "__main__":
    main()
