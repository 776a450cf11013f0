"""Page cost: what each page of the web_load mix costs the web process, one at a time.

On web_load's database (`--db`, built by `bench/web_load.py --keep`), in this process
through Django's test client (the whole middleware stack, no network, no queueing): each
page of the mix (`bench/web_load.py` WEIGHTS, same URLs) is asked once to warm up, then
`--requests` times by as many different operators, and the median is reported of the
request thread's CPU time (Python only: PostgreSQL's time is in the wall time, not in it),
the wall time and the queries, and the mean CPU time PostgreSQL's backends spent on it
(`db_ms`: every client backend of the database but the bench's own probe, read from
/proc/<pid>/schedstat before and after the page's requests; needs the bench and PostgreSQL
on one machine, else it is left out). `/healthz` of the same run is the baseline; the last
lines are the means weighted by the mix, Python and Python + PostgreSQL. CPU time is what a
shared machine disturbs least: compare two versions by running this in each, alternating
(docs/operations.md, "What a page costs").

    .venv/bin/python bench/page_cost.py --db ami_bench_web [--requests 20] [--calls]

--calls: also count the Python function calls a request makes (cProfile, in a second pass
of the same requests so the timings above are not slowed by it), reported as `kcalls`. Not a
time, but it does not move with the machine's load: on a shared machine whose CPU time
varies by 20-30 % from run to run, it shows a change of a few percent in one run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdb import server_url  # noqa: E402
from bench.web_load import TEST_KEY, WEIGHTS, page_urls  # noqa: E402


def emit(metric, value, unit, baseline=None, ratio=None, **extra) -> None:
    line = {"bench": "page_cost", "metric": metric, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def backend_cpu_ns(probe) -> dict[int, int] | None:
    """pid -> CPU nanoseconds so far, of the bench database's client backends (not `probe`'s
    own); None when their /proc entries cannot be read (PostgreSQL on another machine)."""
    pids = [pid for (pid,) in probe.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchall()]  # fmt: skip
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as stat:
                out[pid] = int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            if not out and pid == pids[-1]:
                return None
    return out if pids and out else ({} if not pids else None)


def db_cpu_ms(before, after, requests: int) -> float | None:
    """Mean PostgreSQL CPU ms per request between two `backend_cpu_ns` samples."""
    if before is None or after is None:
        return None
    spent = sum(ns - before.get(pid, 0) for pid, ns in after.items())
    return spent / 1e6 / requests


def python_calls(clients, make, requests: int) -> int:
    """Python function calls of `requests` requests of one page (cProfile's count)."""
    profile = cProfile.Profile()
    for i in range(requests):
        client, path = clients[i % len(clients)], make()
        profile.enable()
        status = client.get(path).status_code
        profile.disable()
        assert status == 200, (path, status)
    return pstats.Stats(profile).total_calls


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default="ami_bench_web")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--calls", action="store_true", help="also count Python calls a request")
    args = p.parse_args(argv)
    os.environ["DATABASE_URL"] = f"{server_url()}/{args.db}"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("AMI_SECRETS_KEY", TEST_KEY)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the code may have moved on since it was built
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    settings.ALLOWED_HOSTS = ["*"]
    people = list(
        User.objects.filter(username__startswith="bench-operator").order_by("username")[
            : args.requests
        ]
    )
    if not people:
        sys.exit(f"no bench operators in {args.db}: build it with bench/web_load.py --keep")
    clients = []
    for user in people:
        client = Client()
        client.force_login(user)
        clients.append(client)
    urls = page_urls(random.Random(args.seed))
    results, calls = {}, {}
    import psycopg

    probe = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    for name, make in urls.items():
        assert clients[0].get(make()).status_code == 200, name  # warm: caches, templates
        cpu, wall, queries = [], [], []
        db_before = backend_cpu_ns(probe)
        for i in range(args.requests):
            client, path = clients[i % len(clients)], make()
            with CaptureQueriesContext(connection) as captured:
                t0, c0 = time.perf_counter(), time.thread_time()
                status = client.get(path).status_code
                cpu.append((time.thread_time() - c0) * 1000)
                wall.append((time.perf_counter() - t0) * 1000)
            assert status == 200, (name, path, status)
            queries.append(len(captured.captured_queries))
        db = db_cpu_ms(db_before, backend_cpu_ns(probe), args.requests)
        results[name] = (
            statistics.median(cpu),
            statistics.median(wall),
            statistics.median(queries),
            db,
        )
        if args.calls:
            calls[name] = python_calls(clients, make, args.requests) / args.requests
    probe.close()
    base = results["healthz"][0]
    for name, (cpu, wall, queries, db) in results.items():
        extra = {"kcalls": round(calls[name] / 1000, 1)} if name in calls else {}
        emit(f"{name}_cpu", round(cpu, 1), "ms", round(base, 1), round(cpu / base, 1),
             wall_ms=round(wall, 1), queries=queries,
             db_ms=None if db is None else round(db, 1), **extra)  # fmt: skip
    total = sum(WEIGHTS.values())
    mix = sum(results[name][0] * weight for name, weight in WEIGHTS.items()) / total
    emit("mix_cpu", round(mix, 1), "ms", round(base, 1), round(mix / base, 1),
         requests=args.requests, load_average=round(os.getloadavg()[0], 1))  # fmt: skip
    if calls:
        mix = sum(calls[name] * weight for name, weight in WEIGHTS.items()) / total / 1000
        emit("mix_kcalls", round(mix, 1), "kcalls", round(calls["healthz"] / 1000, 1),
             round(mix * 1000 / calls["healthz"], 1), requests=args.requests)  # fmt: skip
    if all(r[3] is not None for r in results.values()):
        both = {name: r[0] + r[3] for name, r in results.items()}
        mix = sum(both[name] * weight for name, weight in WEIGHTS.items()) / total
        emit("mix_cpu_with_db", round(mix, 1), "ms", round(both["healthz"], 1),
             round(mix / both["healthz"], 1), requests=args.requests,
             load_average=round(os.getloadavg()[0], 1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
