"""Benchmark: the customer portal's pages, server time, with many customers and a year of usage.

Runs on PostgreSQL in a throwaway database (`--db`, default `ami_bench_h17portal`, created,
migrated and dropped here). PostgreSQL builds the data itself (`INSERT ... SELECT` over
`generate_series`; no row passes through Python): N customers (full: 1,000,000; `--quick`:
20,000), each at its own service point with one meter, 1,000 service points a feeder (20
transformers of 50), customer classes R1/R2 alternating, and `--days` (365) of daily rollups
of imported energy for every meter, one day of every meter a statement, in day order as
ingest writes them (see `load_rollups` for the bulk-load recipe). A sample of `--sample` (20)
customers gets a portal login, a prepaid account with 30 purchases made through
`vending.actions.sell`, register reads at the last month's bounds, and that month's bill
issued (`portal.bills.issue`, as the monthly run does).

Each page is asked `--rounds` (10) times per sampled customer through Django's test client
(the whole middleware stack, in process: server time without the network), pages in turn,
the sampled customers round robin; the same-run baseline is `/healthz` (one `SELECT 1`
behind the same middleware), asked in the same rounds. Figures: p50 and p95 ms per page and
p95 / healthz p95. Before the pages, the similar homes are precomputed as the hourly beat
task does (`portal.similar.compute`, its first run: every day of the rollups, by `--jobs`
connections; timed and printed), and the cache is cleared. Asserted: every answer 200,
the page shows the customer's account number, the usage pages show the similar homes.

    .venv/bin/python bench/portal.py --quick        # 20,000 customers x 365 days (7.3 M rollups)
    .venv/bin/python bench/portal.py                # 1,000,000 x 365 (365 M rollups, ~40 GB)
    # build once (from a frozen copy), measure later with newer code:
    .venv/bin/python bench/portal.py --customers 1000000 --build-only --db NAME
    .venv/bin/python bench/portal.py --reuse --db NAME [--keep]
Options: --customers N --days D --sample S --rounds R --keep --db NAME --jobs J
--build-only --reuse
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

DB = "ami_bench_h17portal"  # (the branch that wrote it: bench DBs never collide)
PER_FEEDER, PER_TRANSFORMER = 1000, 50


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {"bench": "portal", "metric": metric, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def insert_series(cur, model, count: int, expressions: dict[str, str], params: dict) -> None:
    """INSERT `count` rows into `model`'s table from `generate_series(0, count - 1) AS n`:
    `expressions` give columns as SQL over n (named `params`); the rest take their defaults."""
    from django.db import connection

    columns, values, args = [], [], {**params, "count_less_one": count - 1}
    for f in model._meta.concrete_fields:
        if f.column in expressions:
            values.append(expressions[f.column])
        elif f.primary_key:
            continue
        else:
            values.append(f"%(default_{f.column})s")
            args[f"default_{f.column}"] = f.get_db_prep_save(f.get_default(), connection)
        columns.append(f'"{f.column}"')
    cur.execute(
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(0, %(count_less_one)s) AS n",
        args,
    )


def load(customers: int, days: int, jobs: int = 2) -> dict:
    """The grid, meters, customers (built by PostgreSQL) and the rollups; the sample's ids."""
    from django.db import connection, transaction

    from accounts.models import Organisation
    from meters.choices import ChannelKind
    from meters.models import Channel, Customer, GridNode, Meter, MeterModel

    org = Organisation.objects.create(name="Bench utility", code="bench")
    model = MeterModel.objects.create(manufacturer="Acme", name="P1", organisation=org)
    specs = [("1-0:1.8.0*255", ChannelKind.REGISTER, ""),
             ("1-0:1.29.0*255", ChannelKind.PROFILE, "1-0:99.1.0*255")]  # fmt: skip
    channels = {
        obis: Channel.objects.create(
            meter_model=model, obis=obis, name=obis, unit="Wh", kind=kind, profile_obis=profile
        )  # fmt: skip
        for obis, kind, profile in specs
    }
    feeders = -(-customers // PER_FEEDER)
    transformers = -(-customers // PER_TRANSFORMER)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        region = GridNode.objects.create(kind="region", code="R", name="Region", organisation=org)
        substation = GridNode.objects.create(
            kind="substation", code="S", name="Sub", parent=region, organisation=org
        )
        cur.execute("SELECT nextval(pg_get_serial_sequence('meters_gridnode', 'id'))")
        # ids: feeders f0 + f, transformers t0 + k (k = n / 50), service points p0 + n
        f0 = cur.fetchone()[0] + 1
        t0 = f0 + feeders
        p0 = t0 + transformers
        common = {"organisation_id": "%(org)s"}
        ids = {"org": org.pk, "f0": f0, "t0": t0, "p0": p0, "sub": substation.pk,
               "path": substation.path, "per_f": PER_FEEDER, "per_t": PER_TRANSFORMER,
               "t_per_f": PER_FEEDER // PER_TRANSFORMER}  # fmt: skip
        insert_series(cur, GridNode, feeders, {
            **common, "id": "%(f0)s + n", "parent_id": "%(sub)s", "kind": "'feeder'",
            "path": "%(path)s || (%(f0)s + n) || '/'", "code": "'F' || n",
            "name": "'Feeder ' || n",
        }, ids)  # fmt: skip
        feeder_path = "%(path)s || (%(f0)s + {f}) || '/'"
        insert_series(cur, GridNode, transformers, {
            **common, "id": "%(t0)s + n", "parent_id": "%(f0)s + n / %(t_per_f)s",
            "kind": "'transformer'",
            "path": feeder_path.format(f="n / %(t_per_f)s") + " || (%(t0)s + n) || '/'",
            "code": "'T' || (n / %(t_per_f)s) || '.' || (n %% %(t_per_f)s)",
            "name": "'Transformer'",
        }, ids)  # fmt: skip
        insert_series(cur, GridNode, customers, {
            **common, "id": "%(p0)s + n", "parent_id": "%(t0)s + n / %(per_t)s",
            "kind": "'service_point'",
            "path": feeder_path.format(f="n / %(per_f)s")
            + " || (%(t0)s + n / %(per_t)s) || '/' || (%(p0)s + n) || '/'",
            "code": "'SP' || n", "name": "n || ' Bench St'",
        }, ids)  # fmt: skip
        cur.execute("SELECT setval(pg_get_serial_sequence('meters_gridnode', 'id'), %s)",
                    [p0 + customers])  # fmt: skip
        for table, name, extra in (
            (Meter, "meter", {
                "serial": "'P' || lpad(n::text, 8, '0')", "meter_model_id": "%(model)s",
                "status": "'active'", "install_date": "'2025-01-01'::date",
            }),
            (Customer, "customer", {
                "account_number": "'ACC' || lpad(n::text, 8, '0')",
                "name": "'Customer ' || n",
                "tariff_code": "CASE WHEN n %% 2 = 1 THEN 'R1' ELSE 'R2' END",
            }),
        ):  # fmt: skip
            cur.execute(f"SELECT nextval(pg_get_serial_sequence('meters_{name}', 'id'))")
            first = cur.fetchone()[0] + 1
            insert_series(cur, table, customers, {
                **common, "id": f"{first} + n", "service_point_id": "%(p0)s + n", **extra,
            }, {**ids, "model": model.pk})  # fmt: skip
            cur.execute(f"SELECT setval(pg_get_serial_sequence('meters_{name}', 'id'), %s)",
                        [first + customers])  # fmt: skip
    loaded_grid = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
        cur.execute("SELECT id FROM meters_meter ORDER BY id")
        meter_ids = [r[0] for r in cur.fetchall()]
    started = time.perf_counter()
    rows = load_rollups(meter_ids, channels["1-0:1.29.0*255"].pk, days, jobs)
    emit("load_grid_s", round(loaded_grid, 1), "s", customers=customers)
    emit("load_rollups_s", round(time.perf_counter() - started, 1), "s", rows=rows)
    return {"org": org, "channels": channels, "meters": meter_ids}


def loaded_before() -> dict:
    """What `load` returns, from a database it built before (`--build-only`, then `--reuse`)."""
    from accounts.models import Organisation
    from meters.models import Channel, Meter

    org = Organisation.objects.get(code="bench")
    channels = {c.obis: c for c in Channel.objects.filter(meter_model__organisation=org)}
    meters = Meter.objects.filter(organisation=org).order_by("pk")
    return {"org": org, "channels": channels, "meters": list(meters.values_list("pk", flat=True))}


INDEX_MEMORY = "1500MB"  # maintenance_work_mem of each index build (fewer merge passes)


def in_parallel(jobs) -> None:
    """Run the callables in threads (each its own database connection); raise the first error."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def load_rollups(meter_ids, channel_id: int, days: int, jobs: int = 2) -> int:
    """A year of daily rollups, generated by PostgreSQL itself, as a bulk load is done.

    The rows are made by `INSERT ... SELECT` over `generate_series` (no row passes through
    Python), one local day of every meter a statement, in day order as ingest writes them
    (a meter's year is spread over the table, not packed together). The table's key and
    index are dropped first and built once at the end (a sort, not 365 M ordered inserts),
    the table is unlogged while it is a bench table (nothing to replay: the throwaway
    database is dropped after the run; reads are the same as a logged table's) and
    autovacuum leaves it alone (ANALYZE instead), so nothing vacuums 25 GB during the
    measurement. `jobs` connections insert (alternate days) and build the key and indexes
    side by side.
    """
    from django.db import connection

    today = datetime.now(UTC).date()
    table = "meters_dailyenergy"
    with connection.cursor() as cur:
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'p'",
            [table],
        )
        keys = cur.fetchall()
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname "
            "NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        )
        indexes = cur.fetchall()
        for name, _ in keys:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute(f"ALTER TABLE {table} SET UNLOGGED")
        cur.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        low, high = min(meter_ids), max(meter_ids)
    started = time.perf_counter()
    done = []

    def insert_days(part: int) -> None:  # the days back % jobs == part, oldest first
        from django.db import connections

        with connections["default"].cursor() as cur:
            for back in range(days - 1, -1, -1):
                if back % jobs != part:
                    continue
                day = today - timedelta(days=back)
                cur.execute(
                    f"INSERT INTO {table} (meter_id, channel_id, day, value, intervals, "
                    "estimated) SELECT id, %s, %s, 6000 + (id %% 97) * 50 + %s * 7, 96, 0 "
                    "FROM meters_meter WHERE id BETWEEN %s AND %s ORDER BY id",
                    [channel_id, day, (day - date(2000, 1, 1)).days % 13, low, high],
                )
                done.append(day)
                if len(done) % 30 == 0:
                    took = time.perf_counter() - started
                    print(f"rollups: {len(done)}/{days} days, {took:.0f} s", file=sys.stderr)
        connections["default"].close()

    in_parallel([lambda part=part: insert_days(part) for part in range(jobs)])
    emit("load_rollup_rows_s", round(time.perf_counter() - started, 1), "s", jobs=jobs)
    started = time.perf_counter()

    def build(statement: str) -> None:
        from django.db import connections

        with connections["default"].cursor() as cur:
            cur.execute(f"SET maintenance_work_mem = '{INDEX_MEMORY}'")
            cur.execute(statement)
        connections["default"].close()

    # the key's index and the indexes side by side (each a sort of 365 M keys; `jobs` at
    # once: CREATE INDEX locks share, ADD CONSTRAINT would lock them out), then the key
    statements = [
        f'CREATE UNIQUE INDEX "{name}" ON {table} ' + definition.removeprefix("PRIMARY KEY ")
        for name, definition in keys
    ]
    statements += [definition for _, definition in indexes]
    for first in range(0, len(statements), jobs):
        in_parallel([lambda s=s: build(s) for s in statements[first : first + jobs]])
    for name, _ in keys:
        build(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" PRIMARY KEY USING INDEX "{name}"')
    emit("load_rollup_index_s", round(time.perf_counter() - started, 1), "s", jobs=jobs)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return len(meter_ids) * days


def sample(loaded: dict, n: int) -> list:
    """Portal logins, prepaid accounts with 30 purchases each and a month's register reads."""
    from django.contrib.auth.models import Group

    from accounts import roles
    from accounts.models import User
    from meters.models import Customer
    from meters.store import RegisterRead
    from portal import bills
    from portal.customers import month_start
    from reports.billing import Period
    from vending import actions
    from vending.models import PrepaidAccount, Tariff, VendingKey, VendingStation
    from vending.sts.pan import luhn_check_digit

    org = loaded["org"]
    before = Customer.objects.filter(portal_user__username__startswith="bench-customer-")
    if before.exists():  # a kept database measured again
        return [(c.portal_user, c) for c in before.select_related("portal_user").order_by("pk")]
    tariff = Tariff.objects.create(organisation=org, code="R1", name="Residential", currency="ZAR",
                                   price_per_kwh=Decimal("2.5"))  # fmt: skip
    VendingKey.objects.create(organisation=org, sgc=123456, krn=1, key="abababababababab")
    station = VendingStation.objects.create(organisation=org, code="BENCH", name="Bench")
    clerk = User.objects.create_user("bench-clerk", password="x", organisation=org)
    clerk.groups.add(Group.objects.get(name=roles.VENDING_CLERK))
    station.clerks.add(clerk)
    shift = actions.open_shift(station, acting_user=clerk)
    customer_group = Group.objects.get(name=roles.CUSTOMER)
    step = max(1, len(loaded["meters"]) // n)
    chosen = list(
        Customer.objects.filter(
            service_point__meters__pk__in=loaded["meters"][::step][:n]
        ).select_related("service_point")
    )
    period_month = f"{month_start(datetime.now(UTC).date(), 1):%Y-%m}"
    period = Period.month(period_month)
    register = loaded["channels"]["1-0:1.8.0*255"]
    out = []
    for i, customer in enumerate(chosen):
        user = User.objects.create_user(f"bench-customer-{i}", password="x")
        user.groups.add(customer_group)
        customer.portal_user = user
        customer.save(update_fields=["portal_user"])
        meter = customer.service_point.meters.get()
        body = f"{i + 1:010d}"
        number = body + luhn_check_digit(body)
        account = PrepaidAccount.objects.create(
            customer=customer, meter=meter, tariff=tariff, meter_number=number,
            sgc=123456, krn=1, ti=1, base_date=2014,
        )  # fmt: skip
        for k in range(30):
            actions.sell(account, Decimal(20 + k), acting_user=clerk, shift=shift)
        for at, value in ((period.start, 1_000_000), (period.end, 1_250_000)):
            RegisterRead.objects.create(meter=meter, channel=register, read_at=at, value=value)
        if datetime.now(UTC).date() >= bills.issues_on(period_month):
            bills.issue(customer, period_month)  # as `manage.py portal_issue_bills` does
        out.append((user, customer))
    return out


def precompute(jobs: int) -> None:
    """The similar homes, as the beat task's first run computes them (timed, CPU too)."""
    from portal import similar
    from portal.models import SimilarHomes

    started, cpu = time.perf_counter(), time.process_time()
    rows = similar.compute(log=lambda line: print(line, file=sys.stderr), jobs=jobs)
    emit("similar_compute_s", round(time.perf_counter() - started, 1), "s", rows=rows, jobs=jobs,
         python_cpu_s=round(time.process_time() - cpu, 1), load=os.getloadavg()[0])  # fmt: skip
    assert SimilarHomes.objects.filter(kind="year").exists()


def measure(sampled, rounds: int) -> dict:
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the in-process client

    from portal.customers import month_start

    last = f"{month_start(datetime.now(UTC).date(), 1):%Y-%m}"
    pages = ["/healthz", "/portal/", "/portal/usage/", "/portal/usage/?period=year",
             "/portal/usage/?period=week", "/portal/usage/?period=day", "/portal/purchases/",
             "/portal/bills/", f"/portal/bills/{last}/", "/portal/outages/", "/portal/pay/",
             "/portal/account/"]  # fmt: skip
    clients = []
    for user, customer in sampled:
        client = Client(secure=True)  # as behind the TLS proxy (DEBUG off redirects to https)
        client.force_login(user)
        client.get("/portal/")  # the session's first answers (door, factor) are written once
        clients.append((client, customer))
    cache.clear()
    times = {page: [] for page in pages}
    for _ in range(rounds):
        for client, customer in clients:
            for page in pages:
                started = time.perf_counter()
                response = client.get(page)
                times[page].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (page, response.status_code)
                if page == "/portal/":
                    assert customer.account_number in response.content.decode()
                if page.startswith("/portal/usage/"):
                    assert "Similar homes near you" in response.content.decode()
                    assert "The average of" in response.content.decode(), page
    return times


def p95(values) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build the database, keep it and stop (measure later: --reuse)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure a database kept by --build-only/--keep (migrated first)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="connections building (2)")
    parser.add_argument("--db", default=DB, help=f"the throwaway database's name ({DB})")
    args = parser.parse_args()
    customers = args.customers or (20_000 if args.quick else 1_000_000)
    url = server_url()
    setup_django(url, args.db, create=not args.reuse, AMI_PORTAL_PAYER="", DEBUG="false")
    if args.build_only:
        load(customers, args.days, args.jobs)
        print(f"kept {args.db}; measure it with --reuse --db {args.db}", file=sys.stderr)
        return
    try:
        loaded = loaded_before() if args.reuse else load(customers, args.days, args.jobs)
        customers = len(loaded["meters"])
        sampled = sample(loaded, args.sample)
        precompute(args.jobs)
        times = measure(sampled, args.rounds)
        base = p95(times["/healthz"])
        emit("healthz_p95", round(base, 2), "ms", load=os.getloadavg()[0])
        for page, values in times.items():
            if page == "/healthz":
                continue
            value = p95(values)
            emit("page_p95", round(value, 2), "ms", baseline=round(base, 2),
                 ratio=round(value / base, 1), page=page, p50=round(statistics.median(values), 2),
                 n=len(values), customers=customers)  # fmt: skip
        print(f"load average {os.getloadavg()}", file=sys.stderr)
    finally:
        if not args.keep:
            drop_database(url, args.db)


if __name__ == "__main__":
    main()
