"""Benchmark: bytes per stored value and month-series latency, before and after compaction.

Runs on PostgreSQL in a throwaway database (`ami_bench_storage`, or AMI_BENCH_DB; created,
migrated and dropped here). Loads by binary COPY a closed month (June 2025, 30 days) of
15-minute intervals x 4 channels for N meters, as the store's ingest writes them (one wide
row per interval, a packed quality word): values that vary like consumption, ~1 % of the
values estimated, a missing value now and then, and a meter in twenty with a two-hour gap
a day (irregular days). Then, in the same run:

* `bytes_per_value` before: pg_total_relation_size (heap + primary key + TOAST) of the
  month's interval partition / stored values; after `compaction.compact_month`: the
  compacted partition plus what is left of the interval partition, / the same values;
* `compaction_values_per_s`: the compaction itself (wall and this process's CPU);
* `month_series_ms` before and after (median and p95 over sampled meters): one meter's
  channel for the month through `meters.store.query.series` at raw resolution (2,880
  points, the meter graph's call) and hourly; the answers are asserted identical.

    .venv/bin/python bench/storage.py [--quick] [--meters N] [--keep]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amisite import pgbulk  # noqa: E402
from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402
from bench.ingest import make_fleet, relation_bytes  # noqa: E402

BENCH_DB = os.environ.get("AMI_BENCH_DB", "ami_bench_storage")
MONTH = datetime(2025, 6, 1, tzinfo=UTC)
DAYS = 30
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
QH_US = 900 * 1_000_000
ESTIMATED, MISSING = 1, 4


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {
        "bench": "storage",
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def load_month(meters: list[int], seed: int = 18) -> int:
    """A month of wide interval rows per meter (binary COPY); returns the values stored."""
    from django.db import connection, transaction

    from meters.store import partitions

    rng = random.Random(seed)
    partitions.ensure_month(MONTH.date())
    start_us = (MONTH - PG_EPOCH) // timedelta(microseconds=1)
    n = DAYS * 96
    nfields = struct.pack(">h", 8)
    i8 = struct.Struct(">iq")
    i2 = struct.Struct(">ih")
    null = struct.pack(">i", -1)
    values = 0
    for first in range(0, len(meters), 250):
        parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
        for m in meters[first : first + 250]:
            gappy = m % 20 == 0
            base = 80 + m % 300
            for k in range(n):
                if gappy and 40 <= k % 96 < 48:
                    continue  # two hours never read, every day
                row = [rng.randrange(base, base + 400), rng.randrange(0, 30)]
                row += [rng.randrange(20, 90), rng.randrange(0, 10)]
                word = 0
                for c in range(4):
                    draw = rng.random()
                    if draw < 0.01:
                        word |= ESTIMATED << (8 * c)
                    elif draw < 0.0015 + 0.01:
                        word |= MISSING << (8 * c)
                        row[c] = None
                parts.append(nfields + i8.pack(8, m) + i8.pack(8, start_us + k * QH_US))
                parts.append(i8.pack(8, word))
                for v in row:
                    parts.append(null if v is None else i8.pack(8, v))
                parts.append(i2.pack(2, 0))
                values += 4
        parts.append(struct.pack(">h", -1))
        with transaction.atomic(), connection.cursor() as cur:
            pgbulk.copy_in(
                cur,
                "COPY meters_intervalreading (meter_id, ts, q, v0, v1, v2, v3, grp) "
                "FROM STDIN (FORMAT binary)",
                b"".join(parts),
            )
    vacuum()
    return values


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE meters_intervalreading")
        cur.execute("VACUUM ANALYZE meters_intervalday")


def month_bytes() -> tuple[int, int]:
    """(interval partition, compacted partition) bytes of the month, indexes and TOAST in."""
    from django.db import connection

    from meters.store import compaction, partitions

    hot = relation_bytes(partitions.partition_name(MONTH.date()))
    name = compaction.partition_name(MONTH.date())
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        packed = relation_bytes(name) if cur.fetchone()[0] else 0
    return hot, packed


def read_series(samples, channel, resolution) -> tuple[list, list[float]]:
    from meters.store.query import series

    lo, hi = MONTH, MONTH + timedelta(days=DAYS)
    out, times = [], []
    for meter_id in samples:
        t0 = time.perf_counter()
        points = list(series(meter_id, channel, lo, hi, resolution))
        times.append((time.perf_counter() - t0) * 1000)
        out.append(points)
    return out, times


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 20 else max(samples)


def run(n_meters: int, n_samples: int) -> None:
    from meters.choices import ChannelKind
    from meters.models import Channel
    from meters.store import compaction

    meters = make_fleet(n_meters)
    channel = Channel.objects.get(kind=ChannelKind.PROFILE, profile_column=0)
    values = load_month(meters)
    samples = random.Random(7).sample(meters, min(n_samples, len(meters)))

    hot_before, _ = month_bytes()
    before = {}
    timings_before = {}
    for resolution in ("raw", "hour"):
        read_series(samples[:3], channel, resolution)  # warm caches
        before[resolution], timings_before[resolution] = read_series(samples, channel, resolution)

    t0, c0 = time.perf_counter(), time.process_time()
    done = compaction.compact_month(MONTH.date(), now=MONTH + timedelta(days=DAYS + 10))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    vacuum()
    hot_after, packed_after = month_bytes()
    assert done["rows"] * 4 == values, (done, values)

    timings_after = {}
    for resolution in ("raw", "hour"):
        read_series(samples[:3], channel, resolution)
        after, timings_after[resolution] = read_series(samples, channel, resolution)
        assert after == before[resolution], f"{resolution}: compacted answers differ"

    b_before = hot_before / values
    b_after = (hot_after + packed_after) / values
    emit("bytes_per_value", b_after, "B", b_before, b_after / b_before, meters=n_meters,
         values=values, compact_rows=done["packed"])  # fmt: skip
    emit("compaction_values_per_s", values / wall, "values/s", chunks=done["chunks"],
         wall_s=round(wall, 2), client_cpu_s=round(cpu, 2))  # fmt: skip
    for resolution in ("raw", "hour"):
        med_b = statistics.median(timings_before[resolution])
        med_a = statistics.median(timings_after[resolution])
        after_p95 = round(p95(timings_after[resolution]), 2)
        before_p95 = round(p95(timings_before[resolution]), 2)
        emit(f"month_series_{resolution}_ms", med_a, "ms", med_b, med_a / med_b,
             p95_after=after_p95, p95_before=before_p95, samples=len(samples))  # fmt: skip
    print(
        f"\nstorage ({n_meters} meters x {DAYS} days x 96 x 4 = {values:,} values, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}):\n"
        f"  bytes per value   interval rows {b_before:6.1f} B -> compacted {b_after:5.1f} B "
        f"({b_after / b_before:.2f}x)\n"
        f"  compaction        {values / wall:>12,.0f} values/s ({done['chunks']} chunks, "
        f"{wall:.1f} s)\n"
        f"  month, raw        {statistics.median(timings_before['raw']):6.1f} ms -> "
        f"{statistics.median(timings_after['raw']):6.1f} ms (median of {len(samples)})\n"
        f"  month, hourly     {statistics.median(timings_before['hour']):6.1f} ms -> "
        f"{statistics.median(timings_after['hour']):6.1f} ms",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about a minute")
    p.add_argument("--meters", type=int, help="meters (quick 200, full 2,000)")
    p.add_argument("--samples", type=int, default=40, help="meters whose month series is read")
    p.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    args = p.parse_args()
    n_meters = args.meters or (200 if args.quick else 2000)
    url = server_url()
    setup_django(url, BENCH_DB)
    try:
        run(n_meters, args.samples)
    finally:
        if not args.keep:
            drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
