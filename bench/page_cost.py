"""Page cost: what each page of the web_load mix costs the web process, one at a time.

On web_load's database (`--db`, built by `bench/web_load.py --keep`), in this process
through Django's test client (the whole middleware stack, no network, no queueing): each
page of the mix (`bench/web_load.py` WEIGHTS, same URLs) is asked once to warm up, then
`--requests` times by as many different operators, and the median is reported of the
request thread's CPU time (Python only: PostgreSQL's time is in the wall time, not in it),
the wall time and the queries. `/healthz` of the same run is the baseline; the last line is
the mean weighted by the mix. CPU time is what a shared machine disturbs least: compare two
versions by running this in each, alternating (docs/operations.md, "What a page costs").

    .venv/bin/python bench/page_cost.py --db ami_bench_web [--requests 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default="ami_bench_web")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--seed", type=int, default=21)
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
    results = {}
    for name, make in urls.items():
        assert clients[0].get(make()).status_code == 200, name  # warm: caches, templates
        cpu, wall, queries = [], [], []
        for i in range(args.requests):
            client, path = clients[i % len(clients)], make()
            with CaptureQueriesContext(connection) as captured:
                t0, c0 = time.perf_counter(), time.thread_time()
                status = client.get(path).status_code
                cpu.append((time.thread_time() - c0) * 1000)
                wall.append((time.perf_counter() - t0) * 1000)
            assert status == 200, (name, path, status)
            queries.append(len(captured.captured_queries))
        results[name] = (
            statistics.median(cpu),
            statistics.median(wall),
            statistics.median(queries),
        )
    base = results["healthz"][0]
    for name, (cpu, wall, queries) in results.items():
        emit(f"{name}_cpu", round(cpu, 1), "ms", round(base, 1), round(cpu / base, 1),
             wall_ms=round(wall, 1), queries=queries)  # fmt: skip
    total = sum(WEIGHTS.values())
    mix = sum(results[name][0] * weight for name, weight in WEIGHTS.items()) / total
    emit("mix_cpu", round(mix, 1), "ms", round(base, 1), round(mix / base, 1),
         requests=args.requests, load_average=round(os.getloadavg()[0], 1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
