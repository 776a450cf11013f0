"""Benchmark: one day of the fleet, compressed in time, phase by phase, each against a baseline.

Runs on PostgreSQL in a throwaway database (`ami_bench_daily`, or AMI_BENCH_DB; created,
migrated and dropped here). N meters (4 profile channels, an import register), with the
last two days of the previous month already stored (what compaction and billing find).
Then the day, in the order the beat and the workers do it, each phase timed (wall, this
process's CPU, the PostgreSQL backends' CPU) and set against a baseline measured in the
same run on the same data:

1. `ingest`: the day's profiles (96 x 4 values), register reads and an event per meter
   through `collection.ingest` in batches of 500 meters (one worker task each: validation,
   estimation, the daily rollup) -- against a raw binary COPY of the same values into a
   narrow table;
2. `rollups`: the day's daily energy of the fleet recomputed set-based
   (`meters.store.rollups.refresh`, what a late read or `rebuild_rollups` does) -- against one
   raw `GROUP BY` over the day's intervals;
3. `alarms`: one pass of the alarm derivations (`meters.alarms.engine.derive_events`, beat
   every 15 min: 96 a day) -- against the raw SQL of its heaviest question (meters without
   consumption that day, from the rollup);
4. `billing`: the month's billing export of the fleet (`reports.billing_export`) --
   against one raw SQL statement of the register differences per meter;
5. `compaction`: the closed month packed (`meters.store.compaction.compact_month`) --
   against a plain rewrite of the same rows (`CREATE TABLE AS`).

The table at the end gives per phase its wall time against the baseline's (same run) and
its CPU (this process + its PostgreSQL backend; on a shared machine the wall clock mostly
measures the neighbours), and scales the CPU to 1,000,000 meters (x 1,000,000 / N, alarms
x 96 passes a day): the core-hours a day of the fleet costs. Reading the meters over
the wire is not here: `bench/collection_e2e.py` measures it (CPU per meter-day).

    .venv/bin/python bench/daily_store.py --quick          # 1,000 meters
    .venv/bin/python bench/daily_store.py                  # 10,000 meters
    .venv/bin/python bench/daily_store.py --meters 100000  # the issue's fleet (long)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402
from bench.ingest import CHANNELS, make_fleet, raw_copy  # noqa: E402

BENCH_DB = os.environ.get("AMI_BENCH_DB", "ami_bench_store")
DAY = datetime(2025, 6, 1, tzinfo=UTC)  # the day of the cycle; May 2025 is the closed month
MAY = datetime(2025, 5, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
BATCH = 500
FLEET = 1_000_000
REGISTER = "1-0:1.8.0*255"


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {"bench": "daily_store", "metric": metric, "value": round(value, 3), "unit": unit,
            "baseline": None if baseline is None else round(baseline, 3),
            "ratio": None if ratio is None else round(ratio, 3), **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def backend_cpu_s() -> float:
    """CPU seconds of this database's PostgreSQL backends (Linux /proc; 0 elsewhere)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cur.fetchall()]
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Timer:
    def __init__(self):
        self.wall = self.cpu = self.db_cpu = 0.0


@contextmanager
def timed():
    t = Timer()
    w0, c0, d0 = time.perf_counter(), time.process_time(), backend_cpu_s()
    yield t
    t.wall = time.perf_counter() - w0
    t.cpu = time.process_time() - c0
    t.db_cpu = max(0.0, backend_cpu_s() - d0)


def blocks(meter_ids, start: datetime, intervals: int = 96):
    from collection.protocols.base import Channel, ProfileBlock, ProfileRow

    chans = tuple(Channel(o, u) for o, u in CHANNELS)
    out = []
    for m in meter_ids:
        zero = m % 97 == 0  # a meter in ~100 uses nothing: the zero-consumption alarm
        rows = tuple(
            ProfileRow(
                start + QH * (i + 1),
                (
                    Decimal(0 if zero else 100 + (m * 7 + i) % 50),
                    Decimal((m + i) % 5),
                    Decimal(30 + (m + i) % 9),
                    Decimal(i % 4),
                ),
            )
            for i in range(intervals)
        )
        out.append((m, ProfileBlock("1-0:99.1.0*255", chans, rows, 900)))
    return out


def registers(meter_ids, at: datetime, day_index: int):
    from collection.protocols.base import RegisterValue

    return [
        (m, at, [RegisterValue(REGISTER, Decimal(1_000_000 + 15_000 * day_index + m), "Wh")])
        for m in meter_ids
    ]


def prepare(meters: list[int]) -> None:
    """The closed month's last two days and its opening register reads (not timed)."""
    from collection.ingest import ingest_profiles, ingest_registers

    for i in range(0, len(meters), BATCH):
        chunk = meters[i : i + BATCH]
        ingest_registers(registers(chunk, MAY, 0))
        for day in (29, 30):
            ingest_profiles(blocks(chunk, MAY + timedelta(days=day)))


def run(n_meters: int) -> None:
    from django.db import connection

    from accounts.models import User
    from collection.ingest import ingest_events, ingest_profiles, ingest_registers
    from collection.protocols.base import MeterEvent
    from meters.alarms.engine import derive_events
    from meters.store import compaction, partitions, rollups
    from reports import billing, billing_export

    with connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE bench_narrow (meter bigint, channel int, ts timestamptz, value bigint,"
            " quality smallint, PRIMARY KEY (meter, channel, ts))"
        )
    t0 = time.perf_counter()
    meters = make_fleet(n_meters)
    prepare(meters)
    emit("setup", time.perf_counter() - t0, "s", meters=n_meters)
    phases = {}

    # 1. ingest: a day of profiles, registers and events, a worker batch at a time.
    values = n_meters * 96 * len(CHANNELS)
    with timed() as a:
        for i in range(0, n_meters, BATCH):
            chunk = meters[i : i + BATCH]
            result = ingest_profiles(blocks(chunk, DAY))
            assert result.inserted == len(chunk) * 96, result
            ingest_registers(registers(chunk, DAY + timedelta(days=1), 31))
            ingest_events([(m, [MeterEvent(DAY + QH * 40, 1, "0-0:99.98.0*255")]) for m in chunk])
    day_blocks = blocks(meters, DAY)
    with timed() as b:
        assert raw_copy(day_blocks) == values
    phases["ingest"] = (a, b, values, "values")

    # 2. rollups: the day's daily energy of the fleet, recomputed.
    lo, hi = DAY, DAY + timedelta(days=1)
    with timed() as a:
        rollups.refresh(rollups.days_touched({m: (lo + QH, hi) for m in meters}))
    with timed() as b, connection.cursor() as cur:
        cur.execute(
            "SELECT meter_id, sum(v0), sum(v1), sum(v2), sum(v3), count(*) "
            "FROM meters_intervalreading WHERE ts > %s AND ts <= %s GROUP BY meter_id",
            [lo, hi],
        )
        assert len(cur.fetchall()) == n_meters
    phases["rollups"] = (a, b, n_meters, "meters")

    # 3. alarms: one pass of the periodic derivations (96 a day).
    with timed() as a:
        derive_events(now=hi + timedelta(hours=1))
    with timed() as b, connection.cursor() as cur:
        cur.execute(
            "SELECT d.meter_id FROM meters_dailyenergy d JOIN meters_channel c "
            "ON c.id = d.channel_id AND c.obis = %s WHERE d.day = %s AND d.value = 0",
            [CHANNELS[0][0], lo.date()],
        )
        zero = len(cur.fetchall())
    assert zero >= n_meters // 100, zero
    phases["alarms"] = (a, b, n_meters, "meters")

    # 4. billing: the closed month's determinants of the fleet, exported.
    user = User.objects.create_superuser("bench", "b@example.invalid", "pw")
    period = billing.Period.month("2025-05")
    with timed() as a, tempfile.NamedTemporaryFile(suffix=".csv") as out:
        written = billing_export.write_export(billing.meters_for(user), period, "csv", out.name)
        assert written.ready + len(written.held) == n_meters, written
    with timed() as b, connection.cursor() as cur:
        cur.execute(
            "SELECT r.meter_id, max(r.value) FILTER (WHERE r.read_at = %s) "
            "- max(r.value) FILTER (WHERE r.read_at = %s) FROM meters_registerread r "
            "WHERE r.read_at IN (%s, %s) GROUP BY r.meter_id",
            [hi, MAY, MAY, hi],
        )
        assert len(cur.fetchall()) == n_meters
    phases["billing"] = (a, b, n_meters, "meters")

    # 5. compaction: the closed month packed, one row per meter, group and day.
    hot = partitions.partition_name(MAY.date())
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {hot}")
        month_values = cur.fetchone()[0] * len(CHANNELS)
    with timed() as b, connection.cursor() as cur:
        cur.execute(f"CREATE TABLE bench_rewrite AS SELECT * FROM {hot}")
    with timed() as a:
        done = compaction.compact_month(MAY.date(), now=DAY + timedelta(days=10))
    assert done["rows"] * len(CHANNELS) == month_values, done
    phases["compaction"] = (a, b, month_values, "values")

    report(n_meters, phases)


def report(n_meters: int, phases: dict) -> None:
    """Per phase: wall against the baseline's wall (same run), and the CPU it cost (this
    process + its PostgreSQL backend): on a shared machine the wall clock mostly measures
    the neighbours, the CPU seconds what the phase needs. Scaled to 1,000,000 meters."""
    scale = FLEET / n_meters
    lines = []
    total = 0.0
    for name, (a, b, count, unit) in phases.items():
        runs = 96 if name == "alarms" else 1
        cpu = a.cpu + a.db_cpu
        core_s = cpu * scale * runs
        total += core_s
        emit(
            f"{name}_s", a.wall, "s", b.wall, a.wall / b.wall if b.wall else None,
            cpu_s=round(a.cpu, 2), db_cpu_s=round(a.db_cpu, 2),
            baseline_cpu_s=round(b.cpu + b.db_cpu, 2), count=count, unit_of=unit,
            per_s=round(count / a.wall, 1), runs_per_day=runs,
            core_h_at_1m_meters=round(core_s / 3600, 2), meters=n_meters,
        )  # fmt: skip
        lines.append(
            f"  {name:<11}{a.wall:8.2f} s {b.wall:8.2f} s {a.wall / b.wall:7.1f}x "
            f"{count / a.wall:>11,.0f} {unit:<6}/s {cpu:7.2f} s {b.cpu + b.db_cpu:7.2f} s "
            f"{core_s / 3600:8.2f} core-h"
        )
    print(
        f"\ndaily cycle ({n_meters:,} meters, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}):\n"
        f"  phase          wall  baseline   ratio        rate        cpu  base cpu"
        f"  at 1M meters/day\n" + "\n".join(lines) + "\n"
        f"  at 1,000,000 meters: {total / 3600:.1f} core-hours a day (alarms 96 passes), "
        f"{total / 86400:.2f} cores busy around the clock",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,000 meters")
    p.add_argument("--meters", type=int, help="meters (quick 1,000, default 10,000)")
    p.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    args = p.parse_args()
    n_meters = args.meters or (1000 if args.quick else 10_000)
    url = server_url()
    setup_django(url, BENCH_DB, TIME_ZONE="UTC")
    try:
        run(n_meters)
    finally:
        if not args.keep:
            drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
