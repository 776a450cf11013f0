"""Benchmark: the monthly billing export of 100,000 meters (CSV, XLSX, CIM XML) vs a raw COPY.

Issue 16's target: monthly billing determinants for 100,000 meters streamed to XLSX and to
CIM XML in at most 60 s each, memory flat (peak RSS reported), against a raw SQL export of
the same rows.

Builds (or, with `--reuse`, reuses) a PostgreSQL database (`ami_bench_billing_export`, or
`--db NAME`, on the server of DATABASE_URL) by COPY: N meters (full 100,000; quick 5,000)
of one model with registers 1.8.0 / 2.8.0 (start and end reads of May 2026) and 1.6.0
(maximum demand with its time), profiles 1.29.0 / 2.29.0 with a month of daily rollup rows
(what ingest keeps; the billing sums read it). Every 250th meter has 10 % of its intervals
estimated: held.

Each figure runs in a fresh child process (so peak RSS is its own), at a tenth of the fleet
and at the whole fleet (flat memory: the two peaks should match):

* A (`csv`, `xlsx`, `xml`): `reports.billing_export.write_export(..., include_held=True)` to a
  file, exactly what the page sends;
* B (`copy`): `COPY (SELECT ...) TO STDOUT (FORMAT csv)` of the same determinants (register
  reads at both bounds, their delta, the rollup sums and counts) written to a file.

Asserted: the CSV's consumption of every meter equals the raw COPY's; the XML holds one
MeterReading per meter; the XLSX's row counts (at the small scale). Prints JSON lines
(ratio = A / B) and a summary; the machine's load average is in every line.

    nice -n 10 .venv/bin/python bench/billing_export.py [--quick] [--keep] [--reuse] [--db NAME]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree.ElementTree import iterparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, peak_rss_mb, server_url, setup_django  # noqa: E402

DB = os.environ.get("AMI_BENCH_DB", "ami_bench_billing_export")
MAY1, JUNE1 = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 31
HELD_EVERY = 250
REGISTERS = [("1-0:1.8.0*255", "Wh"), ("1-0:2.8.0*255", "Wh"), ("1-0:1.6.0*255", "W")]
PROFILES = [("1-0:1.29.0*255", "Wh"), ("1-0:2.29.0*255", "Wh")]

RAW = """
COPY (
  WITH sums AS (
    SELECT meter_id, channel_id, sum(value) AS total, sum(intervals) AS n,
           sum(estimated) AS est
    FROM meters_dailyenergy WHERE day BETWEEN '2026-05-01' AND '2026-05-31'
    GROUP BY meter_id, channel_id),
  pairs (register, profile) AS (VALUES ('1-0:1.8.0*255', '1-0:1.29.0*255'),
                                       ('1-0:2.8.0*255', '1-0:2.29.0*255'))
  SELECT m.serial, c.obis, s.value, s.read_at, e.value, e.read_at, e.capture_time,
         e.value - s.value, sums.total, e.value - s.value - sums.total, sums.n, sums.est
  FROM meters_meter m
  JOIN meters_channel c ON c.meter_model_id = m.meter_model_id AND c.kind = 'register'
  LEFT JOIN meters_registerread s ON s.meter_id = m.id AND s.channel_id = c.id
       AND s.read_at = '2026-05-01T00:00:00Z'
  LEFT JOIN meters_registerread e ON e.meter_id = m.id AND e.channel_id = c.id
       AND e.read_at = '2026-06-01T00:00:00Z'
  LEFT JOIN pairs ON pairs.register = c.obis
  LEFT JOIN meters_channel p ON p.meter_model_id = m.meter_model_id AND p.obis = pairs.profile
  LEFT JOIN sums ON sums.meter_id = m.id AND sums.channel_id = p.id
  WHERE m.serial <= %s
  ORDER BY m.serial, c.obis
) TO STDOUT (FORMAT csv)
"""


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {"bench": "billing_export", "metric": metric, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, "load": round(os.getloadavg()[0], 1),
            **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def daily(i: int) -> int:
    """Meter i's daily import (Wh); export is a tenth of it."""
    return 2000 + (i * 37) % 5000


def serial(i: int) -> str:
    return f"BX{i:07d}"


def load(n: int) -> None:
    from django.db import connection, transaction

    from accounts.models import Organisation, User
    from amisite import pgbulk
    from meters.choices import ChannelKind
    from meters.models import Channel, Meter, MeterModel

    org = Organisation.objects.create(name="Bench", code="bench")
    User.objects.create_superuser("bench", "b@example.invalid", "pw")
    model = MeterModel.objects.create(manufacturer="Acme", name="BX", organisation=org)
    ch = {}
    for obis, unit in REGISTERS:
        ch[obis] = Channel.objects.create(meter_model=model, obis=obis, name=obis, unit=unit,
                                          kind=ChannelKind.REGISTER)  # fmt: skip
    for obis, unit in PROFILES:
        ch[obis] = Channel.objects.create(meter_model=model, obis=obis, name=obis, unit=unit,
                                          kind=ChannelKind.PROFILE,
                                          profile_obis="1-0:99.1.0*255")  # fmt: skip
    for start in range(0, n, 10000):
        Meter.objects.bulk_create(
            [Meter(serial=serial(i), meter_model=model, organisation=org)
             for i in range(start, min(n, start + 10000))],
            batch_size=5000,
        )  # fmt: skip
    ids = dict(Meter.objects.values_list("serial", "pk"))
    reads = []
    imp, exp, md = (ch[o].pk for o, _u in REGISTERS)
    for i in range(n):
        m, total = ids[serial(i)], daily(i) * DAYS
        base = 1_000_000 + i
        reads += [f"{m}\t{imp}\t2026-05-01 00:00:00+00\t{base}\t\\N\t0",
                  f"{m}\t{imp}\t2026-06-01 00:00:00+00\t{base + total}\t\\N\t0",
                  f"{m}\t{exp}\t2026-05-01 00:00:00+00\t{base}\t\\N\t0",
                  f"{m}\t{exp}\t2026-06-01 00:00:00+00\t{base + total // 10}\t\\N\t0",
                  f"{m}\t{md}\t2026-06-01 00:00:00+00\t{3000 + i % 900}\t"
                  f"2026-05-{1 + i % 31:02d} 18:15:00+00\t0"]  # fmt: skip
    row = struct.Struct(">hiqiqiiiqihih")
    epoch = date(2000, 1, 1)
    days = [(date(2026, 5, 1) + timedelta(days=d) - epoch).days for d in range(DAYS)]
    pimp, pexp = ch[PROFILES[0][0]].pk, ch[PROFILES[1][0]].pk
    with transaction.atomic(), connection.cursor() as cur:
        sql = (
            "COPY meters_registerread (meter_id, channel_id, read_at, value, capture_time, quality)"
        )
        pgbulk.copy_in(cur, sql + " FROM STDIN", ("\n".join(reads) + "\n").encode())
        for start in range(0, n, 5000):
            parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
            for i in range(start, min(n, start + 5000)):
                m, v = ids[serial(i)], daily(i)
                est = 10 if i % HELD_EVERY == 0 else 0  # 10 of 96 a day: held at 5 %
                for channel, value in ((pimp, v), (pexp, v // 10)):
                    parts += [row.pack(6, 8, m, 8, channel, 4, d, 8, value, 2, 96, 2, est)
                              for d in days]  # fmt: skip
            parts.append(struct.pack(">h", -1))
            sql = "COPY meters_dailyenergy (meter_id, channel_id, day, value, intervals, estimated)"
            pgbulk.copy_in(cur, sql + " FROM STDIN (FORMAT binary)", b"".join(parts))
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE meters_dailyenergy")
        cur.execute("VACUUM ANALYZE meters_registerread")
        cur.execute("ANALYZE meters_meter")


def child(fmt: str, n: int, path: str) -> None:
    """One measurement in this (fresh) process: prints {"seconds", "cpu", "rss_mb", ...}."""
    os.environ["DATABASE_URL"] = f"{server_url()}/{DB}"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    os.environ["TIME_ZONE"] = "UTC"
    import django

    django.setup()
    from django.db import connection

    from accounts.models import User
    from reports import billing, billing_export

    last = serial(n - 1)
    cpu0, t0 = time.process_time(), time.perf_counter()
    extra = {}
    if fmt == "copy":
        with open(path, "wb") as out, connection.cursor() as cur:
            with cur.cursor.copy(RAW, [last]) as copy:
                for block in copy:
                    out.write(block)
    else:
        user = User.objects.get(username="bench")
        meters = billing.meters_for(user).filter(serial__lte=last)
        written = billing_export.write_export(
            meters, billing.Period.month("2026-05"), fmt, path, include_held=True
        )
        extra = {"ready": written.ready, "held": len(written.held)}
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mb": rss,
                      "bytes": os.path.getsize(path), **extra}))  # fmt: skip


def measure(fmt: str, n: int, path: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", fmt, "--meters", str(n), "--out", path],
        capture_output=True, text=True, check=True, env=os.environ,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def consumption(path: str, raw: bool) -> dict[tuple[str, str], str]:
    """{(serial, register): consumption} of an export (raw COPY or the report's CSV)."""
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        if raw:
            for row in csv.reader(f):
                out[(row[0], row[1])] = row[7]
        else:
            for row in csv.DictReader(f):
                if row.get("register") and row["meter"] != "meter":  # not the held heading
                    out[(row["meter"], row["register"])] = row["consumption"]
    return out


def check(fmt: str, n: int, path: str, raw_path: str) -> None:
    if fmt == "csv":
        got, want = consumption(path, False), consumption(raw_path, True)
        assert len(want) == 3 * n and got == want, (len(got), len(want))
    elif fmt == "xml":
        count = sum(1 for _e, el in iterparse(path) if el.tag.endswith("}MeterReading"))
        assert count == n, count
    elif fmt == "xlsx" and n <= 20000:
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True)
        rows = sum(1 for ws in book.worksheets for _row in ws.iter_rows(min_row=2))
        assert rows == 3 * n, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    parser.add_argument("--meters", type=int)
    parser.add_argument("--db", help="the database's name (default ami_bench_billing_export)")
    parser.add_argument("--child")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.db:
        global DB
        DB = os.environ["AMI_BENCH_DB"] = args.db  # the children read it from the environment
    n = args.meters or (5000 if args.quick else 100_000)
    if args.child:
        child(args.child, n, args.out)
        return
    url = server_url()
    if not args.reuse:
        setup_django(url, DB, TIME_ZONE="UTC")
        t0 = time.perf_counter()
        load(n)
        emit("load", round(time.perf_counter() - t0, 1), "s", meters=n)
        from django.db import connections

        connections.close_all()
    try:
        with tempfile.TemporaryDirectory(prefix="ami-bench-billing-") as tmp:
            for size in (n // 10, n):
                raw_path = os.path.join(tmp, f"raw-{size}.csv")
                base = measure("copy", size, raw_path)
                emit("raw_copy", round(base["seconds"], 2), "s", meters=size,
                     cpu_s=round(base["cpu"], 2), rss_mb=round(base["rss_mb"]),
                     bytes=base["bytes"])  # fmt: skip
                for fmt in ("csv", "xlsx", "xml"):
                    path = os.path.join(tmp, f"export-{size}.{fmt}")
                    got = measure(fmt, size, path)
                    check(fmt, size, path, raw_path)
                    assert got["held"] == (size + HELD_EVERY - 1) // HELD_EVERY, got
                    emit(f"export_{fmt}", round(got["seconds"], 2), "s",
                         baseline=round(base["seconds"], 2),
                         ratio=round(got["seconds"] / base["seconds"], 1), meters=size,
                         cpu_s=round(got["cpu"], 2), rss_mb=round(got["rss_mb"]),
                         baseline_rss_mb=round(base["rss_mb"]), bytes=got["bytes"],
                         held=got["held"])  # fmt: skip
                    print(f"billing export {fmt}: {size} meters in {got['seconds']:.1f} s "
                          f"(raw COPY {base['seconds']:.1f} s), peak RSS {got['rss_mb']:.0f} "
                          f"MB; load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
                    os.unlink(path)
                os.unlink(raw_path)
    finally:
        if not args.keep:
            drop_database(url, DB)


if __name__ == "__main__":
    main()
