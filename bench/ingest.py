"""Benchmark: the idempotent ingest path against a raw binary COPY into a narrow table.

Runs on PostgreSQL in a throwaway database (`ami_bench` on the server of DATABASE_URL,
default postgres://postgres@127.0.0.1:5432; created, migrated and dropped here). Each round
ingests one fresh day (96 x 4 channels) for every meter, alternating:

* A  `ingest_profiles` (validation, estimation, daily rollup; COPY to staging + one
  INSERT ... ON CONFLICT, an UPDATE only when keys were already stored);
* A' the same with validation and rollup off (the store write alone);
* A_daily the same as A with the daily rollup alone, as ingest rolled up before the hourly
  rollup (issue 16): `rollups._refresh_hours_sql` swapped for the daily-only statement,
  which is what the PostgreSQL path ran then; A / A_daily is what keeping hours costs;
* B  baseline: binary COPY of the same values into a plain narrow table
  `(meter, channel, ts, value, quality)` with its primary key.

Both start from the same `ProfileBlock`s (Decimal values) and include their encoding. The
figure is values per second, median of the rounds; the ratio is A / B. Also: re-ingest of an
already stored day (all duplicates), bytes per value of both tables, CPU of the Python side.

    .venv/bin/python bench/ingest.py [--quick] [--meters N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amisite import pgbulk  # noqa: E402
from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

BENCH_DB = os.environ.get("AMI_BENCH_DB", "ami_bench")  # own name: parallel runs
QH = timedelta(minutes=15)
DAY0 = datetime(2026, 6, 1, tzinfo=UTC)
CHANNELS = [  # as the simulated fleet (collection/simulators/model.py)
    ("1-0:1.29.0*255", "Wh"),
    ("1-0:2.29.0*255", "Wh"),
    ("1-0:3.29.0*255", "varh"),
    ("1-0:4.29.0*255", "varh"),
]
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def make_fleet(n: int) -> list[int]:
    from accounts.models import Organisation
    from meters.choices import ChannelKind
    from meters.models import Channel, Meter, MeterModel

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
    Channel.objects.create(
        meter_model=model,
        obis="1-0:1.8.0*255",
        name="import",
        unit="Wh",
        kind=ChannelKind.REGISTER,
    )
    Meter.objects.bulk_create(
        [Meter(serial=f"B{i:07d}", meter_model=model, organisation=org) for i in range(n)],
        batch_size=5000,
    )
    return list(Meter.objects.order_by("pk").values_list("pk", flat=True))


def day_blocks(meter_ids: list[int], day: int):
    from collection.protocols.base import Channel, ProfileBlock, ProfileRow

    start = DAY0 + timedelta(days=day)
    chans = tuple(Channel(o, u) for o, u in CHANNELS)
    out = []
    for m in meter_ids:
        rows = tuple(
            ProfileRow(
                start + QH * (i + 1),
                (
                    Decimal(100 + (m * 7 + i) % 50),
                    Decimal((m + i) % 5),
                    Decimal(30 + (m + i) % 9),
                    Decimal(i % 4),
                ),
            )
            for i in range(96)
        )
        out.append((m, ProfileBlock("1-0:99.1.0*255", chans, rows, 900)))
    return out


def raw_copy(blocks) -> int:
    """Baseline B: binary COPY of every value into the narrow table (one transaction)."""
    from django.db import connection, transaction

    row = struct.Struct(">hiqiiiqiqih")
    parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    n = 0
    for m, block in blocks:
        for r in block.rows:
            ts = (r.timestamp - PG_EPOCH) // timedelta(microseconds=1)
            for ch, v in enumerate(r.values):
                parts.append(row.pack(5, 8, m, 4, ch, 8, ts, 8, int(v), 2, 0))
                n += 1
    parts.append(struct.pack(">h", -1))
    with transaction.atomic(), connection.cursor() as cur:
        pgbulk.copy_in(
            cur,
            "COPY bench_narrow (meter, channel, ts, value, quality) FROM STDIN (FORMAT binary)",
            b"".join(parts),
        )
    return n


def relation_bytes(name: str) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree(%s::regclass) WHERE isleaf",
            [name],
        )
        total = int(cur.fetchone()[0])
        if total:
            return total
        cur.execute("SELECT pg_total_relation_size(%s::regclass)", [name])
        return int(cur.fetchone()[0])


def count(sql: str, params=()) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {
        "bench": "ingest",
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="under a minute")
    p.add_argument("--meters", type=int, help="meters per round (quick 400, full 2500)")
    p.add_argument("--rounds", type=int, help="A/A'/B rounds (quick 3, full 5)")
    p.add_argument("--keep", action="store_true", help="keep the ami_bench database")
    args = p.parse_args()
    n_meters = args.meters or (400 if args.quick else 2500)
    rounds = args.rounds or (3 if args.quick else 5)
    url = server_url()
    setup_django(url, BENCH_DB)
    try:
        run(n_meters, rounds)
    finally:
        if not args.keep:
            drop_database(url, BENCH_DB)


def run(n_meters: int, rounds: int) -> None:
    from django.db import connection

    from collection.ingest import ingest_profiles
    from meters.store import DailyEnergy, HourlyEnergy, IntervalReading, rollups

    with connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE bench_narrow (meter bigint, channel int, ts timestamptz, value bigint,"
            " quality smallint, PRIMARY KEY (meter, channel, ts))"
        )
    meter_ids = make_fleet(n_meters)
    values_per_round = n_meters * 96 * 4
    # Warm-up (creates the month's partition, warms caches); not measured.
    ingest_profiles(day_blocks(meter_ids, 60))
    variants = ("A", "A_daily", "A_store_only", "B")
    figures = {v: [] for v in variants}
    cpu = {"A": [], "A_daily": [], "A_store_only": []}
    with_hours = rollups._refresh_hours_sql
    day = 0
    for _ in range(rounds):
        for variant in variants:
            blocks = day_blocks(meter_ids, day)
            rollups._refresh_hours_sql = (
                rollups._refresh_sql if variant == "A_daily" else with_hours
            )
            t0, c0 = time.perf_counter(), time.process_time()
            if variant == "B":
                n = raw_copy(blocks)
                assert n == values_per_round
            else:
                full = variant != "A_store_only"
                result = ingest_profiles(blocks, validate=full, rollup=full)
                assert (result.inserted, result.duplicates) == (n_meters * 96, 0), result
                assert result.values == values_per_round
            elapsed = time.perf_counter() - t0
            if variant != "B":
                cpu[variant].append((time.process_time() - c0) / values_per_round * 1e6)
            figures[variant].append(values_per_round / elapsed)
            day += 1
    rollups._refresh_hours_sql = with_hours
    # Correctness of what was stored.
    a_days = [0 + len(variants) * r for r in range(rounds)]
    lo = DAY0 + timedelta(days=a_days[0])
    stored = IntervalReading.objects.filter(ts__gt=lo, ts__lte=lo + timedelta(days=1))
    assert stored.count() == n_meters * 96
    first = stored.filter(meter_id=meter_ids[0]).order_by("ts").first()
    m = meter_ids[0]
    assert (first.v0, first.v1, first.v2, first.v3) == (100 + m * 7 % 50, m % 5, 30 + m % 9, 0)
    assert DailyEnergy.objects.filter(day=lo.date()).count() == n_meters * 4
    assert HourlyEnergy.objects.filter(day=lo.date()).count() == n_meters * 4
    hours = HourlyEnergy.objects.get(meter_id=m, channel__obis=CHANNELS[0][0], day=lo.date())
    assert hours.hours[0] == sum(100 + (m * 7 + i) % 50 for i in range(4))
    daily_only = DAY0 + timedelta(days=1)  # the first A_daily day: no hours, as before
    assert not HourlyEnergy.objects.filter(day=daily_only.date()).exists()
    assert count("SELECT count(*) FROM bench_narrow") == values_per_round * rounds

    base = statistics.median(figures["B"])
    import os as _os

    cores = _os.cpu_count()
    for variant, label in (
        ("A", "ingest_values_per_s"),
        ("A_daily", "ingest_daily_rollup_only_values_per_s"),
        ("A_store_only", "store_only_values_per_s"),
    ):
        med = statistics.median(figures[variant])
        emit(
            label,
            med,
            "values/s",
            base,
            med / base,
            meters=n_meters,
            rounds=rounds,
            cpu_us_per_value=round(statistics.median(cpu[variant]), 3),
            cpus=cores,
        )
    emit("raw_narrow_copy_values_per_s", base, "values/s", meters=n_meters, cpus=cores)
    a, a_daily = statistics.median(figures["A"]), statistics.median(figures["A_daily"])
    emit(
        "hourly_rollup_ingest_time_ratio",
        a_daily / a,
        "x",
        meters=n_meters,
        rounds=rounds,
        note="ingest wall time with hours / daily rollup only (same run)",
        cpu_us_per_value=round(statistics.median(cpu["A"]), 3),
        cpu_us_per_value_daily_only=round(statistics.median(cpu["A_daily"]), 3),
        load=round(os.getloadavg()[0], 1),
    )

    # Re-ingest: the same days again, all duplicates; alternating with the raw COPY figure.
    again, base2 = [], []
    for r in range(rounds):
        blocks = day_blocks(meter_ids, a_days[r])
        before = count("SELECT count(*) FROM meters_intervalreading")
        t0 = time.perf_counter()
        result = ingest_profiles(blocks)
        again.append(values_per_round / (time.perf_counter() - t0))
        assert (result.inserted, result.updated, result.duplicates) == (0, 0, n_meters * 96)
        assert count("SELECT count(*) FROM meters_intervalreading") == before
        blocks = day_blocks(meter_ids, day)
        day += 1
        t0 = time.perf_counter()
        raw_copy(blocks)
        base2.append(values_per_round / (time.perf_counter() - t0))
    med, b2 = statistics.median(again), statistics.median(base2)
    emit("reingest_duplicates_values_per_s", med, "values/s", b2, med / b2, meters=n_meters)

    wide_values = count("SELECT count(*) FROM meters_intervalreading") * 4
    narrow_values = count("SELECT count(*) FROM bench_narrow")
    wide_b = relation_bytes("meters_intervalreading") / wide_values
    narrow_b = relation_bytes("bench_narrow") / narrow_values
    emit("bytes_per_value", wide_b, "B", narrow_b, wide_b / narrow_b)

    print(
        f"\ningest ({n_meters} meters x 96 x 4 values per round, {rounds} rounds, "
        f"{cores} CPUs):\n"
        f"  ingest_profiles (validate+rollup) {statistics.median(figures['A']):>12,.0f} values/s"
        f"  = {statistics.median(figures['A']) / base:.2f}x raw narrow COPY\n"
        f"  the same, daily rollup only       {a_daily:>12,.0f} values/s"
        f"  = {a_daily / base:.2f}x (hours cost x{a_daily / a:.2f} wall)\n"
        f"  store only                        {statistics.median(figures['A_store_only']):>12,.0f}"
        f" values/s  = {statistics.median(figures['A_store_only']) / base:.2f}x\n"
        f"  raw narrow binary COPY            {base:>12,.0f} values/s\n"
        f"  re-ingest (all duplicates)        {med:>12,.0f} values/s  = {med / b2:.2f}x\n"
        f"  bytes per value: wide {wide_b:.1f} B, narrow {narrow_b:.1f} B",
        flush=True,
    )


if __name__ == "__main__":
    main()
