"""Benchmark: customer clustering of 100,000 customers over a month of intervals (issue 16).

Issue 16's target: "Customer clustering of 100,000 customers x a month of intervals: <= 60 s".

Builds (or, with `--reuse`, reuses; `--keep` keeps it) a PostgreSQL database
(`ami_bench_patterns`, or `--db NAME`, on the server of DATABASE_URL, TIME_ZONE UTC): N
customers (full 100,000; quick 5,000), each with a customer meter at a service point (the grid
of `bench/store_query.py`, 200 per feeder) and 15-minute import energy from 1 May to 1 July
2026 (the month analysed, June, and the equal period before it). The intervals are built the
way the store holds a closed month at scale: compacted day rows (`meters_intervalday`, one row
per meter, group and UTC day with an array of 96 values, `meters.store.compaction`), made in
SQL from a pool of noisy day arrays (5 archetypes x weekday/weekend x 8 sizes x 32 noise
variants, each value x 0.7-1.3) joined to the meters, so 100,000 x 62 days x 96 values build
in minutes. Archetypes: evening peak, morning + evening, daytime (commercial), night (storage
heating) and flat; every 50th customer changes archetype in June (a different peak). The
hourly rollup (`HourlyEnergy`) of the import channel is built the same way, from each pool
day's 24 hour sums; the first 1,000 meters' rows are then recomputed by the store's own
`rollups.refresh_range` over the intervals, which must give exactly the built rows (rolled
back; timed and printed as `rollup_backfill`: what filling the rollup of such a history
costs per meter-day, e.g. after the upgrade that added it).

Each figure runs in a fresh child process (its own peak RSS, `VmHWM`), alternating A B:

* A (`analyse`): `reports.patterns.analyse(customer_meters(user), June, k=5)`, what the page and
  the API run; split into reading the energy (`_energy`: both periods, from the hourly
  rollup), k-means (`_cluster`) and the rest (meters, classes, shapes, class means);
* B (`raw`): one SQL statement per 1,000 meters giving the same per-meter sums per (period,
  weekend, hour) straight from the intervals, over the same view (`meters_interval`; what
  the report itself did before the hourly rollup), fetched by psycopg; then scikit-learn
  `KMeans` alone (same parameters) on the shapes made from it (`kmeans_only`).

Asserted: every meter's shape from A equals the one from B's sums; each archetype is
recovered as one cluster (purity >= 95 %, distinct clusters); the changed customers are
exactly the flagged ones. Prints JSON lines (ratio = A / B) with the load average.

    nice -n 10 .venv/bin/python bench/patterns.py [--quick] [--keep] [--reuse] [--db NAME]
        [--pairs N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, peak_rss_mb, server_url, setup_django  # noqa: E402

DB = os.environ.get("AMI_BENCH_DB", "ami_bench_patterns")
K = 5
FIRST, LAST = date(2026, 5, 1), date(2026, 7, 1)  # UTC days of compacted rows
MONTH = "2026-06"
CHANGE_EVERY = 50
RAW_CHUNK = 1000  # B's meters per statement (one statement for 100,000 spilled ~23 GB)
VARIANTS, SIZES = 32, 8


# archetype -> (weekday, weekend) factor per local hour
def _hours(base: float, spans: dict[range, float]) -> list[float]:
    out = [base] * 24
    for span, f in spans.items():
        for h in span:
            out[h] = f
    return out


ARCHETYPES = {
    "evening": (_hours(0.3, {range(7, 9): 0.7, range(18, 23): 1.8}),
                _hours(0.4, {range(9, 14): 0.8, range(18, 23): 1.6})),
    "commuter": (_hours(0.3, {range(6, 9): 1.3, range(17, 21): 1.2}),
                 _hours(0.5, {range(9, 21): 0.9})),
    "daytime": (_hours(0.2, {range(8, 18): 1.6}), _hours(0.25, {})),
    "night": (_hours(0.4, {range(0, 6): 2.2}), _hours(0.4, {range(0, 6): 2.2})),
    "flat": (_hours(1.0, {}), _hours(1.0, {})),
}  # fmt: skip
NAMES = list(ARCHETYPES)
WEIGHTS = [40, 20, 15, 10, 15]
CHANGES = {"evening": "night", "commuter": "daytime", "daytime": "evening", "night": "daytime",
           "flat": "evening"}  # fmt: skip

RAW = """
SELECT meter_id, ts > %(start)s,
       extract(isodow FROM (ts - interval '1 microsecond') AT TIME ZONE %(zone)s) >= 6,
       extract(hour FROM (ts - interval '1 microsecond') AT TIME ZONE %(zone)s),
       sum(v{column}),
       count(DISTINCT ((ts - interval '1 microsecond') AT TIME ZONE %(zone)s)::date)
FROM meters_interval
WHERE grp = %(group)s AND ts > %(before)s AND ts <= %(end)s
  AND day >= %(first_day)s AND day <= %(last_day)s AND v{column} IS NOT NULL
  AND meter_id >= %(lo)s AND meter_id < %(hi)s
GROUP BY 1, 2, 3, 4
"""


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {"bench": "patterns", "metric": metric, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, "load": round(os.getloadavg()[0], 1),
            **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def archetypes(n: int) -> list[tuple[int, int, int | None]]:
    """Per customer i: (archetype, size bucket, archetype in June when it changed)."""
    rng = random.Random(16)
    out = []
    for i in range(n):
        arch = rng.choices(range(len(NAMES)), WEIGHTS)[0]
        changed = NAMES.index(CHANGES[NAMES[arch]]) if i % CHANGE_EVERY == 7 else None
        out.append((arch, rng.randrange(SIZES), changed))
    return out


def load(n: int) -> None:
    from django.db import connection, transaction

    from accounts.models import User
    from bench.store_query import make_grid
    from meters.models import Channel, Customer, Meter
    from meters.store.compaction import ensure_compact_month

    User.objects.create_superuser("bench", "b@example.invalid", "pw")
    meters, _channels, _feeders = make_grid(n)
    imp = Channel.objects.get(meter_model__name="4ch", obis="1-0:1.29.0*255")
    kinds = archetypes(n)
    points = dict(Meter.objects.values_list("pk", "service_point_id"))
    org = Meter.objects.first().organisation
    customers = [
        Customer(account_number=f"ACC{i:07d}", name=f"Customer {i}", organisation=org,
                 service_point_id=points[m], tariff_code="C" if kinds[i][0] == 2 else "R")
        for i, m in enumerate(meters)
    ]  # fmt: skip
    Customer.objects.bulk_create(customers, batch_size=5000)
    shape_rows = [
        f"({a}, {weekend}, {h}, {factors[weekend][h]})"
        for a, name in enumerate(NAMES)
        for weekend, factors in ((0, ARCHETYPES[name]), (1, ARCHETYPES[name]))
        for h in range(24)
    ]
    meter_rows = [
        f"({m}, {a}, {b}, {'NULL' if c is None else c})"
        for m, (a, b, c) in zip(meters, kinds, strict=True)
    ]
    nulls = "array_fill(NULL::integer, ARRAY[96]), " * imp.profile_column
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT setseed(0.16)")
        cur.execute("CREATE TABLE bench_shape (arch int, weekend int, hour int, f float8)")
        cur.execute("INSERT INTO bench_shape VALUES " + ", ".join(shape_rows))
        cur.execute("CREATE TABLE bench_meter (id bigint, arch int, b int, changed int)")
        for start in range(0, n, 20000):
            rows = meter_rows[start : start + 20000]
            cur.execute("INSERT INTO bench_meter VALUES " + ", ".join(rows))
        # the pool: per archetype, day type, size and variant one day of 96 values (interval
        # ending k*15 min after 00:00 UTC: its hour is that of k*15 - 15 min)
        cur.execute(f"""
            CREATE TABLE bench_pool AS
            SELECT a AS arch, w AS weekend, b, var, ARRAY[{nulls}ARRAY(
                SELECT round(s.f * (25 + 25 * b) * (0.7 + 0.6 * random()))::integer
                FROM generate_series(0, 95) k
                JOIN bench_shape s ON s.arch = a AND s.weekend = w
                    AND s.hour = ((k * 15 + 1425) % 1440) / 60
                WHERE var >= 0 ORDER BY k)] AS v4
            FROM generate_series(0, {len(NAMES) - 1}) a, generate_series(0, 1) w,
                 generate_series(0, {SIZES - 1}) b, generate_series(0, {VARIANTS - 1}) var
        """)  # fmt: skip
        cur.execute("CREATE INDEX ON bench_pool (arch, weekend, b, var)")
    month = date(FIRST.year, FIRST.month, 1)
    while month <= LAST:
        nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        lo, hi = max(month, FIRST), min(nxt, LAST + timedelta(days=1))
        with transaction.atomic(), connection.cursor() as cur:
            ensure_compact_month(cur, month)
            cur.execute(
                f"""
                INSERT INTO meters_intervalday (meter_id, day, first_s, step_s, grp, n, v4)
                SELECT m.id, d::date, 0, 900, %s, 96, p.v4
                FROM bench_meter m
                CROSS JOIN generate_series(%s::date, %s::date - 1, interval '1 day') d
                JOIN bench_pool p ON p.b = m.b
                  AND p.arch = CASE WHEN m.changed IS NOT NULL AND d >= '2026-06-01'
                                    THEN m.changed ELSE m.arch END
                  AND p.weekend = (extract(isodow FROM d) >= 6)::int
                  AND p.var = (m.id * 7 + extract(doy FROM d)::int * 13) %% {VARIANTS}
                ORDER BY m.id, d
                """,
                [imp.profile_group, lo, hi],
            )
        month = nxt
    build_hours(imp)
    with connection.cursor() as cur:
        cur.execute("DROP TABLE bench_pool, bench_shape")
        cur.execute("VACUUM ANALYZE meters_intervalday")
        cur.execute("ANALYZE")


ROLLUP_DAYS = (FIRST - timedelta(days=1), LAST - timedelta(days=1))  # local (UTC) days


def build_hours(imp) -> None:
    """The hourly rollup of the import channel as ingest would have kept it, in SQL from the
    same pool (its 24 hour sums per pool day; hour 23 of a day ends with the 00:00 interval
    of the next), a block of meters per statement. `check_rollup` proves it equal to the
    store's own `rollups.refresh_range` over the intervals."""
    from django.db import connection, transaction

    from meters.store import HOURS

    col = imp.profile_column + 1
    hours = ", ".join(f"t.h[{h + 1}]" for h in range(23))
    last = "CASE WHEN t.h IS NULL AND n.first IS NULL THEN NULL ELSE coalesce(t.h[24], 0) + coalesce(n.first, 0) END"  # noqa: E501
    with connection.cursor() as cur:
        cur.execute(f"""
            CREATE TABLE bench_pool_hours AS
            SELECT arch, weekend, b, var, v4[{col}][1] AS first, ARRAY(
                SELECT sum(v4[{col}][k + 1]) FROM generate_series(1, 95) k
                GROUP BY (k - 1) / 4 ORDER BY (k - 1) / 4) AS h
            FROM bench_pool
        """)  # fmt: skip
        cur.execute("CREATE INDEX ON bench_pool_hours (arch, weekend, b, var)")
        cur.execute("SELECT min(id), max(id) FROM bench_meter")
        first_id, last_id = cur.fetchone()
    for lo in range(first_id, last_id + 1, 20000):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                f"""
                WITH pick AS (
                    SELECT m.id AS meter_id, d::date AS day, p.first, p.h
                    FROM bench_meter m
                    CROSS JOIN generate_series(%s::date, %s::date, interval '1 day') d
                    JOIN bench_pool_hours p ON p.b = m.b
                      AND p.arch = CASE WHEN m.changed IS NOT NULL AND d >= '2026-06-01'
                                        THEN m.changed ELSE m.arch END
                      AND p.weekend = (extract(isodow FROM d) >= 6)::int
                      AND p.var = (m.id * 7 + extract(doy FROM d)::int * 13) %% {VARIANTS}
                    WHERE m.id >= %s AND m.id < %s
                )
                INSERT INTO meters_hourlyenergy (meter_id, channel_id, day, {", ".join(HOURS)})
                SELECT coalesce(t.meter_id, n.meter_id), %s, coalesce(t.day, n.day - 1),
                    {hours}, {last}
                FROM pick t FULL JOIN pick n ON n.meter_id = t.meter_id AND n.day = t.day + 1
                WHERE coalesce(t.day, n.day - 1) BETWEEN %s AND %s
                ORDER BY 1, 3
                """,
                [FIRST, LAST, lo, lo + 20000, imp.pk, *ROLLUP_DAYS],
            )
    with connection.cursor() as cur:
        cur.execute("DROP TABLE bench_pool_hours")
        cur.execute("VACUUM ANALYZE meters_hourlyenergy")


class _Undo(Exception):
    pass


def check_rollup(block: int = 1000) -> None:
    """The first `block` meters' rollups recomputed by the store's `rollups.refresh_range`
    (what a backfill runs, timed: ms per meter-day) must equal the bench's built rows; then
    rolled back."""
    from django.db import transaction

    from meters.models import Meter
    from meters.store import HOURS, HourlyEnergy, rollups

    first = Meter.objects.order_by("pk").values_list("pk", flat=True)[0]
    mine = HourlyEnergy.objects.filter(meter_id__gte=first, meter_id__lt=first + block)
    built = sorted(mine.values_list("meter_id", "channel_id", "day", *HOURS))
    meters = Meter.objects.filter(pk__gte=first, pk__lt=first + block).count()
    days = (ROLLUP_DAYS[1] - ROLLUP_DAYS[0]).days + 1
    try:
        with transaction.atomic():
            mine.delete()
            t0, c0 = time.perf_counter(), time.process_time()
            rollups.refresh_range(first, first + block, *ROLLUP_DAYS)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            again = sorted(mine.values_list("meter_id", "channel_id", "day", *HOURS))
            raise _Undo
    except _Undo:
        pass
    assert again == built, (len(again), len(built))
    emit("rollup_backfill", round(seconds, 2), "s", meter_days=meters * days,
         ms_per_meter_day=round(1000 * seconds / (meters * days), 3), cpu_s=round(cpu, 2),
         matches_bench_build=True)  # fmt: skip


def _timed(parts: dict, name: str, fn):
    def wrapper(*args, **kwargs):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            got = parts.setdefault(name, [0.0, 0.0])
            got[0] += time.perf_counter() - w
            got[1] += time.process_time() - c

    return wrapper


def child(kind: str, out_path: str) -> None:
    """One measurement in this (fresh) process: prints {"seconds", "cpu", "rss_mb", ...} and
    saves per meter id the June shape, cluster and change (A) or the shapes from sums (B)."""
    os.environ["DATABASE_URL"] = f"{server_url()}/{DB}"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    os.environ["TIME_ZONE"] = "UTC"
    import django

    django.setup()
    import numpy as np
    from django.db import connection
    from sklearn.cluster import KMeans

    from accounts.models import User
    from meters.models import Channel
    from meters.store.compaction import day_bounds
    from meters.store.days import local_zone
    from reports import patterns
    from reports.billing import Period

    period = Period.month(MONTH)
    user = User.objects.get(username="bench")
    parts: dict[str, list[float]] = {}
    extra = {}
    if kind == "analyse":
        patterns._energy = _timed(parts, "read", patterns._energy)
        patterns._cluster = _timed(parts, "kmeans", patterns._cluster)
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = patterns.analyse(patterns.customer_meters(user), period, K)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        ids = np.array([p.meter.pk for p in result.patterns])
        shapes = np.array([p.shape if p.shape is not None else np.zeros(48)
                           for p in result.patterns])  # fmt: skip
        clusters = np.array([p.cluster or 0 for p in result.patterns])
        changed = np.array([p.changed for p in result.patterns])
        np.savez(out_path, ids=ids, shapes=shapes, clusters=clusters, changed=changed)
        extra = {"meters": len(ids), "shaped": result.shaped, "flagged": int(changed.sum()),
                 "labels": [c.label for c in result.clusters]}  # fmt: skip
    else:
        imp = Channel.objects.get(meter_model__name="4ch", obis="1-0:1.29.0*255")
        length = period.end - period.start
        before = period.start - length
        params = {"zone": str(local_zone()), "group": imp.profile_group, "start": period.start,
                  "before": before, "end": period.end,
                  **{k.replace("day__gte", "first_day").replace("day__lte", "last_day"): v
                     for k, v in day_bounds(before, period.end).items()}}  # fmt: skip
        cpu0, t0 = time.process_time(), time.perf_counter()
        rows = []
        with connection.cursor() as cur:
            cur.cursor.execute("SELECT min(id), max(id) FROM bench_meter")
            first, last = cur.cursor.fetchone()
            for lo in range(first, last + 1, RAW_CHUNK):
                cur.cursor.execute(RAW.format(column=imp.profile_column),
                                   {**params, "lo": lo, "hi": lo + RAW_CHUNK})  # fmt: skip
                rows += cur.cursor.fetchall()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        parts["read"] = [seconds, cpu]
        # shapes (not timed as B: the check's own bookkeeping), then KMeans alone on them
        meters = sorted({r[0] for r in rows})
        index = {m: i for i, m in enumerate(meters)}
        energy = np.zeros((len(meters), 2, 48))
        days = np.zeros((len(meters), 2, 48))
        for meter_id, now, weekend, hour, total, n_days in rows:
            slot = 24 * bool(weekend) + int(hour)
            energy[index[meter_id], int(now), slot] = float(total)
            days[index[meter_id], int(now), slot] = n_days
        shapes = np.array([patterns.shape_of(energy[i, 1], days[i, 1]) for i in range(len(meters))])
        previous = [patterns.shape_of(energy[i, 0], days[i, 0]) for i in range(len(meters))]
        changed = np.array([patterns.moved_share(a, b) >= patterns.change_share()
                            for a, b in zip(shapes, previous, strict=True)])  # fmt: skip
        w, c = time.perf_counter(), time.process_time()
        KMeans(n_clusters=K, n_init=4, random_state=0).fit(shapes)
        parts["kmeans"] = [time.perf_counter() - w, time.process_time() - c]
        np.savez(out_path, ids=np.array(meters), shapes=shapes, changed=changed)
        extra = {"rows": len(rows)}
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mb": peak_rss_mb(), "parts": parts,
                      **extra}))  # fmt: skip


def measure(kind: str, path: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--out", path],
        capture_output=True, text=True, check=True, env=os.environ,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(a_path: str, b_path: str, n: int) -> dict:
    import numpy as np
    from django.db import connection

    a, b = np.load(a_path), np.load(b_path)
    assert len(a["ids"]) == n, len(a["ids"])
    order_a, order_b = np.argsort(a["ids"]), np.argsort(b["ids"])
    assert (a["ids"][order_a] == b["ids"][order_b]).all()
    assert np.allclose(a["shapes"][order_a], b["shapes"][order_b], rtol=1e-9, atol=1e-9)
    assert (a["changed"][order_a] == b["changed"][order_b]).all()
    with connection.cursor() as cur:
        cur.execute("SELECT id, coalesce(changed, arch), changed IS NOT NULL FROM bench_meter")
        truth = {m: (arch, changed) for m, arch, changed in cur.fetchall()}
    ids, clusters, flagged = a["ids"], a["clusters"], a["changed"]
    want = np.array([truth[int(m)][1] for m in ids])
    assert (flagged == want).all(), (int(flagged.sum()), int(want.sum()),
                                     int((flagged != want).sum()))  # fmt: skip
    arch = np.array([truth[int(m)][0] for m in ids])
    purity, seen = {}, set()
    for k in range(len(NAMES)):
        got = clusters[arch == k]
        top = np.bincount(got).argmax()
        purity[NAMES[k]] = round(float((got == top).mean()), 4)
        assert purity[NAMES[k]] >= 0.95 and top not in seen, (NAMES[k], purity, top, seen)
        seen.add(top)
    return {"purity": purity, "flagged": int(flagged.sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--pairs", type=int, help="A/B pairs (default 3; full 1)")
    parser.add_argument("--db", help="the database's name (default ami_bench_patterns)")
    parser.add_argument("--child")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.db:
        global DB
        DB = os.environ["AMI_BENCH_DB"] = args.db  # the children read it from the environment
    if args.child:
        child(args.child, args.out)
        return
    n = args.customers or (5000 if args.quick else 100_000)
    pairs = args.pairs or (3 if n <= 20000 else 1)
    url = server_url()
    setup_django(url, DB, create=not args.reuse, TIME_ZONE="UTC")
    if not args.reuse:
        t0 = time.perf_counter()
        load(n)
        emit("load", round(time.perf_counter() - t0, 1), "s", customers=n,
             values=n * ((LAST - FIRST).days + 1) * 96)  # fmt: skip
    check_rollup()
    from django.db import connections

    connections.close_all()
    try:
        runs: dict[str, list[dict]] = {"analyse": [], "raw": []}
        with tempfile.TemporaryDirectory(prefix="ami-bench-patterns-") as tmp:
            for i in range(pairs):
                for kind in ("analyse", "raw"):
                    path = os.path.join(tmp, f"{kind}-{i}.npz")
                    got = measure(kind, path)
                    runs[kind].append(got)
                    emit(f"{kind}_run", round(got["seconds"], 2), "s", pair=i + 1,
                         cpu_s=round(got["cpu"], 2), rss_mb=round(got["rss_mb"]),
                         parts={k: [round(x, 2) for x in v] for k, v in got["parts"].items()},
                         **{k: v for k, v in got.items()
                            if k in ("meters", "shaped", "flagged", "labels", "rows")})  # fmt: skip
                verdict = check(os.path.join(tmp, f"analyse-{i}.npz"),
                                os.path.join(tmp, f"raw-{i}.npz"), n)  # fmt: skip
                emit("check", "ok", "", pair=i + 1, **verdict)
        a = statistics.median(r["seconds"] for r in runs["analyse"])
        b = statistics.median(r["seconds"] for r in runs["raw"])
        a_read = statistics.median(r["parts"]["read"][0] for r in runs["analyse"])
        a_km = statistics.median(r["parts"]["kmeans"][0] for r in runs["analyse"])
        b_km = statistics.median(r["parts"]["kmeans"][0] for r in runs["raw"])
        emit("analyse", round(a, 2), "s", baseline=round(b, 2), ratio=round(a / b, 2),
             customers=n, pairs=pairs, target_s=60,
             cpu_s=round(statistics.median(r["cpu"] for r in runs["analyse"]), 2),
             rss_mb=round(max(r["rss_mb"] for r in runs["analyse"])))  # fmt: skip
        emit("analyse_read", round(a_read, 2), "s", baseline=round(b, 2),
             ratio=round(a_read / b, 2), customers=n)  # fmt: skip
        emit("analyse_kmeans", round(a_km, 2), "s", baseline=round(b_km, 2),
             ratio=round(a_km / b_km, 2), customers=n)  # fmt: skip
        emit("analyse_rest", round(a - a_read - a_km, 2), "s", customers=n)
        print(f"patterns: {n} customers in {a:.1f} s (read {a_read:.1f} s, k-means {a_km:.1f} "
              f"s); raw SQL {b:.1f} s, KMeans alone {b_km:.1f} s; load "
              f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    finally:
        if not args.keep:
            drop_database(url, DB)


if __name__ == "__main__":
    main()
