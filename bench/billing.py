"""Benchmark: monthly billing determinants (reports.billing) vs a raw SQL export of the same.

Runs on PostgreSQL in a throwaway database (`ami_bench_billing`, created, migrated and
dropped here, on the server of DATABASE_URL). Loads, through the store's write functions,
N meters (quick: 200; full: 2,000) with a month (May 2026) of 15-minute import and export
intervals and start/end register reads, then times, alternating A B A B (3 pairs, medians):

* A: `reports.billing_export.write_export` of every meter to a CSV file (the page's export);
* B: one raw SQL statement per month returning, per meter, the start/end register values and
  the interval sums with estimated/missing counts (what the report computes, without rules).

Both are checked for the same consumption on every meter. Prints JSON lines (ratio = A / B).

    .venv/bin/python bench/billing.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

DB = "ami_bench_billing"
MAY1, JUNE1 = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
N_INTERVALS = 31 * 96

RAW = """
SELECT r.meter_id,
       max(r.value) FILTER (WHERE r.read_at = %(end)s) - max(r.value) FILTER (WHERE r.read_at = %(start)s),
       (SELECT sum(i.v0) FROM meters_intervalreading i
         WHERE i.meter_id = r.meter_id AND i.grp = %(grp)s AND i.ts > %(start)s AND i.ts <= %(end)s),
       (SELECT count(*) FILTER (WHERE i.q & 1 <> 0) FROM meters_intervalreading i
         WHERE i.meter_id = r.meter_id AND i.grp = %(grp)s AND i.ts > %(start)s AND i.ts <= %(end)s)
FROM meters_registerread r
WHERE r.channel_id = %(channel)s AND r.read_at IN (%(start)s, %(end)s)
GROUP BY r.meter_id ORDER BY r.meter_id
"""  # noqa: E501


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {"bench": "billing", "metric": metric, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, **extra}  # fmt: skip
    print(json.dumps(line))


def load(n: int):
    from django.db import transaction

    from accounts.models import Organisation
    from meters.choices import ChannelKind
    from meters.models import Channel, Meter, MeterModel
    from meters.store import rollups
    from meters.store.writes import write_intervals, write_registers

    org = Organisation.objects.create(name="Bench", code="bench")
    model = MeterModel.objects.create(manufacturer="Acme", name="B1", organisation=org)
    specs = [("1-0:1.8.0*255", ChannelKind.REGISTER, ""),
             ("1-0:2.8.0*255", ChannelKind.REGISTER, ""),
             ("1-0:1.29.0*255", ChannelKind.PROFILE, "1-0:99.1.0*255"),
             ("1-0:2.29.0*255", ChannelKind.PROFILE, "1-0:99.1.0*255")]  # fmt: skip
    ch = {}
    for obis, kind, profile in specs:
        ch[obis] = Channel.objects.create(meter_model=model, obis=obis, name=obis, unit="Wh",
                                          kind=kind, profile_obis=profile)  # fmt: skip
    meters = Meter.objects.bulk_create(
        Meter(
            serial=f"BB{i:07d}", meter_model=model, organisation=org, host="127.0.0.1", port=4059
        )  # fmt: skip
        for i in range(n)
    )
    imp, exp = ch["1-0:1.29.0*255"], ch["1-0:2.29.0*255"]
    stamps = [MAY1 + QH * (k + 1) for k in range(N_INTERVALS)]
    for start in range(0, n, 50):
        groups, reads = [], {}
        for i, meter in enumerate(meters[start : start + 50], start=start):
            value = 1 + i % 7
            cols = {imp.profile_column: SimpleNamespace(values=[value] * N_INTERVALS,
                                                        flags=[0] * N_INTERVALS),
                    exp.profile_column: SimpleNamespace(values=[0] * N_INTERVALS,
                                                        flags=[0] * N_INTERVALS)}  # fmt: skip
            groups.append(SimpleNamespace(meter_id=meter.pk, group=imp.profile_group,
                                          timestamps=stamps, columns=cols))  # fmt: skip
            reads[(meter.pk, ch["1-0:1.8.0*255"].pk, MAY1)] = [1000, None, 0]
            reads[(meter.pk, ch["1-0:1.8.0*255"].pk, JUNE1)] = [1000 + value * N_INTERVALS, None, 0]
        with transaction.atomic():
            write_intervals(groups)
            write_registers(reads)
            # as ingest does: the daily rollup the report's interval sums read
            rollups.refresh(
                rollups.days_touched({g.meter_id: (stamps[0], stamps[-1]) for g in groups})
            )
    return org, ch, imp.profile_group


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 200 if args.quick else 2000
    url = server_url()
    setup_django(url, DB, TIME_ZONE="UTC")
    try:
        from django.db import connection

        from accounts.models import User
        from reports import billing, billing_export

        t0 = time.perf_counter()
        org, ch, grp = load(n)
        emit("load", round(time.perf_counter() - t0, 2), "s", meters=n)
        user = User.objects.create_superuser("bench", "b@example.invalid", "pw")
        period = billing.Period.month("2026-05")
        params = {"start": MAY1, "end": JUNE1, "grp": grp, "channel": ch["1-0:1.8.0*255"].pk}

        def report():
            with tempfile.NamedTemporaryFile(suffix=".csv") as out:
                written = billing_export.write_export(
                    billing.meters_for(user), period, "csv", out.name
                )
                assert written.ready == n and not written.held, written
                return os.path.getsize(out.name)

        def raw():
            with connection.cursor() as cur:
                cur.execute(RAW, params)
                rows = cur.fetchall()
            assert len(rows) == n and all(r[1] == r[2] for r in rows)
            return len(rows)

        a, b = [], []
        for _ in range(3):
            t = time.perf_counter()
            report()
            a.append(time.perf_counter() - t)
            t = time.perf_counter()
            raw()
            b.append(time.perf_counter() - t)
        ma, mb = statistics.median(a), statistics.median(b)
        emit("month_determinants", round(ma, 3), "s", baseline=round(mb, 3),
             ratio=round(ma / mb, 1), meters=n, per_meter_ms=round(1000 * ma / n, 2),
             loaded=os.getloadavg()[0])  # fmt: skip
        print(f"billing: {n} meters, report {ma:.2f} s ({1000 * ma / n:.1f} ms/meter) vs raw "
              f"SQL {mb:.2f} s: {ma / mb:.1f}x; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    finally:
        drop_database(url, DB)


if __name__ == "__main__":
    main()
