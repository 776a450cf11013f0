"""Benchmark: issuing a month's bills, one customer at a time against set-based chunks.

Throwaway PostgreSQL database (`--db`, default `ami_bench_h17bills`): the grid, meters and
customers of `bench/portal.py` (built by PostgreSQL; classes R1/R2 with a tariff each),
`--days` (62) of daily rollups, and the import register read at last month's bounds for
every meter (one `INSERT ... SELECT`). Then `--rounds` (3) rounds, each on fresh customers,
A and B alternating (which goes first alternates too):

* A, the baseline: `portal.bills.issue` customer by customer (what `issue_month` did before:
  determinants, tariff and an insert per customer, a transaction each);
* B: `portal.bills.issue_month` over the same number of customers (chunks of
  `--chunk` (500): one determinants pass, one insert, one transaction per chunk).

Figures: customers/s of each (median of the rounds), the ratio B / A, CPU seconds of this
process per 1,000 bills, and B's rate carried to 1,000,000 customers. Asserted: every
customer of a round gets exactly one bill, and B's bills equal what one-by-one computes
for a sample of them.

    .venv/bin/python bench/bills.py --quick     # 1,000 customers, 2 rounds of 100 each
    .venv/bin/python bench/bills.py             # 10,000 customers, 3 rounds of 1,000 each
Options: --customers N --per-round N --rounds R --chunk N --days D --keep --db NAME
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

DB = "ami_bench_h17bills"


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {"bench": "bills", "metric": metric, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def prepare(customers: int, days: int) -> str:
    """The fleet (bench/portal.py's), tariffs per class, last month's bound reads; the month."""
    from django.db import connection

    from bench.portal import load
    from portal.customers import month_start
    from reports.billing import Period
    from vending.models import Tariff

    loaded = load(customers, days)
    org = loaded["org"]
    for code, price in (("R1", "2.50"), ("R2", "1.90")):
        Tariff.objects.create(organisation=org, code=code, name=f"Residential {code}",
                              currency="ZAR", price_per_kwh=Decimal(price))  # fmt: skip
    month = f"{month_start(datetime.now(UTC).date(), 1):%Y-%m}"
    period = Period.month(month)
    register = loaded["channels"]["1-0:1.8.0*255"]
    with connection.cursor() as cur:
        for at, base in ((period.start, 1_000_000), (period.end, 1_250_000)):
            cur.execute(
                "INSERT INTO meters_registerread (meter_id, channel_id, read_at, value, quality) "
                "SELECT id, %s, %s, %s + (id %% 97) * 1000, 0 FROM meters_meter",
                [register.pk, at, base],
            )
        cur.execute("ANALYZE")
    return month


def one_by_one(customers, month: str, now) -> None:
    """The baseline: what `issue_month` did before, a customer at a time."""
    from portal import bills

    for customer in customers.select_related("service_point", "organisation").order_by("pk"):
        bills.issue(customer, month, now)


def set_based(customers, month: str, now, chunk: int) -> None:
    from portal import bills

    bills.issue_month(month, now, customers, chunk=chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--per-round", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--days", type=int, default=62)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--db", default=DB)
    args = parser.parse_args()
    customers = args.customers or (1_000 if args.quick else 10_000)
    per_round = args.per_round or (100 if args.quick else 1_000)
    rounds = args.rounds or (2 if args.quick else 3)
    assert 2 * per_round * rounds <= customers, "--customers: too few for the rounds"
    url = server_url()
    setup_django(url, args.db, AMI_PORTAL_PAYER="", DEBUG="false", AMI_PORTAL_BILL_GRACE_DAYS="0")
    try:
        from django.utils import timezone

        from meters.models import Customer
        from portal import bills
        from portal.models import Bill

        month = prepare(customers, args.days)
        ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
        rates = {"A": [], "B": [], "A_cpu": [], "B_cpu": []}
        for r in range(rounds):
            slices = {
                "A": ids[2 * r * per_round : (2 * r + 1) * per_round],
                "B": ids[(2 * r + 1) * per_round : (2 * r + 2) * per_round],
            }
            for path in "AB" if r % 2 == 0 else "BA":
                chosen = Customer.objects.filter(pk__in=slices[path])
                now = timezone.now()
                started, cpu = time.perf_counter(), time.process_time()
                if path == "A":
                    one_by_one(chosen, month, now)
                else:
                    set_based(chosen, month, now, args.chunk)
                took, cpu = time.perf_counter() - started, time.process_time() - cpu
                made = Bill.objects.filter(customer__in=chosen).values("customer_id")
                assert made.count() == len(slices[path]) == len(set(slices[path])), path
                rates[path].append(len(slices[path]) / took)
                rates[f"{path}_cpu"].append(cpu * 1000 / len(slices[path]))
                print(f"round {r + 1} {path}: {len(slices[path]) / took:.1f} customers/s "
                      f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)  # fmt: skip
            for customer in Customer.objects.filter(pk__in=slices["B"][:: per_round // 10]):
                stored = Bill.objects.get(customer=customer)
                assert stored.content == bills.content_of(bills.bill(customer, month))
        a, b = statistics.median(rates["A"]), statistics.median(rates["B"])
        load = os.getloadavg()[0]
        emit("one_by_one_customers_per_s", round(a, 1), "customers/s", load=load,
             python_cpu_s_per_1000=round(statistics.median(rates["A_cpu"]), 1),
             rounds=rounds, per_round=per_round)  # fmt: skip
        emit("set_based_customers_per_s", round(b, 1), "customers/s", baseline=round(a, 1),
             ratio=round(b / a, 2), load=load, chunk=args.chunk,
             python_cpu_s_per_1000=round(statistics.median(rates["B_cpu"]), 1))  # fmt: skip
        emit("set_based_1m_customers_min", round(1_000_000 / b / 60, 1), "min",
             baseline=round(1_000_000 / a / 60, 1), ratio=round(a / b, 2))  # fmt: skip
        print(f"load average {os.getloadavg()}", file=sys.stderr)
    finally:
        if not args.keep:
            drop_database(url, args.db)


if __name__ == "__main__":
    main()
