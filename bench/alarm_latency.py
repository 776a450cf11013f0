"""Alarm latency: from raising an alarm to a browser's websocket receiving it.

A = `meters.alarms.engine.evaluate_events` (rule matching, the alarm row, occurrences, one
committed transaction per batch, then `publish_alarm` after commit) -> channels-redis ->
the real ASGI application under uvicorn (its own process) on loopback -> a `websockets`
client signed in with a session cookie. Latency is measured from the start of the
`evaluate_events` call to the client receiving the alarm.
B = baseline, same run: the same alarm dicts handed straight to the publisher (its
`channel_layer.group_send` to the same organisation groups) -> the same consumer and
socket: no database, no engine.

Both are driven at `--rate` alarms/s (batches every 20 ms) for `--seconds`, alternating
A B A B for `--pairs` pairs; the figures are the medians of the runs' p50 and p99, the ratio
A / B. Asserted: every alarm arrives exactly once at the utility's user, none at the user
of another organisation, and the database holds one alarm per event raised.

Runs on PostgreSQL in a throwaway database (`ami_bench_alarms` on the server of
DATABASE_URL, created, migrated and dropped here) and the Redis of REDIS_URL (channel
layer prefix `ami-bench-alarms`). Celery's broker is in-memory (notification tasks are
queued, not run: sending mail is not part of this path).

    .venv/bin/python bench/alarm_latency.py [--quick] [--rate N] [--seconds S] [--pairs P]

Full configuration: 500 alarms/s, 5 s per run, 3 pairs. --quick: 500/s, 2 s, 3 pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import webserver  # noqa: E402
from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

BENCH_DB = "ami_bench_alarms"
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
BATCH_INTERVAL = 0.02


def make_world(meters: int):
    """A utility with two regions; `meters` meters in region A; one user per level."""
    from django.contrib.auth.models import Group

    from accounts import roles
    from accounts.models import Organisation, User
    from meters.alarms.models import AlarmRule
    from meters.models import Meter, MeterModel

    utility = Organisation.objects.create(name="Utility", code="utility")
    region_a = Organisation.objects.create(name="North", code="north", parent=utility)
    region_b = Organisation.objects.create(name="South", code="south", parent=utility)
    model = MeterModel.objects.create(manufacturer="Bench", name="M1", organisation=utility)
    Meter.objects.bulk_create(
        [
            Meter(serial=f"A{i:07d}", meter_model=model, organisation=region_a)
            for i in range(meters)
        ],
        batch_size=5000,
    )
    AlarmRule.objects.create(
        name="Power failures", organisation=utility, kinds=["power_failure"], severity=30
    )
    users = {}
    for name, org in (("head-office", utility), ("south-ops", region_b)):
        user = User.objects.create_user(name, password="bench-pw-123", organisation=org)
        user.groups.set(Group.objects.filter(name=roles.OPERATOR))
        users[name] = user
    ids = list(Meter.objects.order_by("pk").values_list("pk", flat=True))
    return ids, users, region_a


def session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


class Listener:
    """A websocket client in its own thread and loop: records when each alarm id arrives."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie
        self.arrivals: dict[int, list[float]] = {}
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.future = asyncio.run_coroutine_threadsafe(self._run(), self.loop)
        assert self.ready.wait(10), "websocket did not connect"

    async def _run(self):
        import websockets

        async with websockets.connect(
            f"ws://127.0.0.1:{self.port}/ws/alarms/",
            origin=f"http://127.0.0.1:{self.port}",
            additional_headers={"Cookie": self.cookie},
            max_queue=None,
        ) as ws:
            self.ws = ws
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            self.ready.set()
            async for raw in ws:
                now = time.monotonic()
                data = json.loads(raw)
                if data.get("type") == "alarm":
                    self.arrivals.setdefault(int(data["alarm"]["id"]), []).append(now)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.ws.close(), self.loop).result(5)
        self.future.result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def drive(rate: int, seconds: float, send_batch) -> tuple[dict[int, float], float]:
    """Call send_batch(i0, n) every 20 ms with n alarms; returns ({key: start}, achieved/s)."""
    per_batch = max(1, round(rate * BATCH_INTERVAL))
    batches = int(seconds / BATCH_INTERVAL)
    started: dict[int, float] = {}
    t0 = time.monotonic()
    for b in range(batches):
        due = t0 + b * BATCH_INTERVAL
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        begin = time.monotonic()
        for key in send_batch(b * per_batch, per_batch):
            started[key] = begin
    elapsed = time.monotonic() - t0
    return started, len(started) / elapsed


def wait_for(listener: Listener, keys, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(k in listener.arrivals for k in keys):
            return
        time.sleep(0.01)


def run_engine(rate, seconds, meter_ids, offset, listener, stranger):
    """A: evaluate_events in a committed transaction; returns latencies (s) and rate."""
    from meters.alarms.engine import active_rules, evaluate_events
    from meters.alarms.models import Alarm
    from meters.store import EventRecord

    rules = active_rules()
    ids_by_meter: dict[int, int] = {}

    def send_batch(i0, n):
        batch = [
            EventRecord(
                meter_id=meter_ids[offset + i],
                log="0-0:99.98.0*255",
                ts=T0 + timedelta(seconds=offset + i),
                code=1,
            )
            for i in range(i0, i0 + n)
        ]
        raised = evaluate_events(batch, rules=rules)
        assert len(raised) == n, (len(raised), n)
        for alarm in raised:
            ids_by_meter[alarm.meter_id] = alarm.pk
        return [a.pk for a in raised]

    started, achieved = drive(rate, seconds, send_batch)
    wait_for(listener, started)
    missing = [k for k in started if k not in listener.arrivals]
    got = sorted(listener.arrivals[k][0] - started[k] for k in started if k in listener.arrivals)
    log(
        f"A: {len(started)} raised at {achieved:.0f}/s, {len(missing)} missing, "
        f"p50 {percentile(got, 0.5) * 1000:.1f} ms, max {got[-1] * 1000:.1f} ms"
    )
    assert not missing, f"{len(missing)} alarms never arrived"
    dupes = [k for k in started if len(listener.arrivals[k]) != 1]
    assert not dupes, f"{len(dupes)} alarms arrived more than once"
    leaked = set(started) & set(stranger.arrivals)
    assert not leaked, f"{len(leaked)} alarms reached another organisation's user"
    assert Alarm.objects.filter(pk__in=list(started)).count() == len(started)
    return [listener.arrivals[k][0] - started[k] for k in started], achieved


def run_baseline(rate, seconds, first_key, region_path, listener):
    """B: bare group_send of the same message to the same groups (the publisher's loop,
    so the same persistent Redis connections; no database, no engine)."""
    from meters.alarms.consumers import _publisher, groups_for_path

    groups = groups_for_path(region_path)

    def send_batch(i0, n):
        keys = [first_key + i for i in range(i0, i0 + n)]
        for key in keys:
            alarm = {"id": key, "kind": "power_failure", "state": "raised", "count": 1,
                     "meter": f"A{key:07d}", "first_event_at": T0.isoformat()}  # fmt: skip
            _publisher.submit(groups, alarm)
        return keys

    started, achieved = drive(rate, seconds, send_batch)
    wait_for(listener, started)
    missing = [k for k in started if k not in listener.arrivals]
    got = sorted(listener.arrivals[k][0] - started[k] for k in started if k in listener.arrivals)
    log(
        f"B: {len(started)} sent at {achieved:.0f}/s, {len(missing)} missing, "
        f"p50 {percentile(got, 0.5) * 1000:.1f} ms, max {got[-1] * 1000:.1f} ms"
    )
    assert not missing, f"{len(missing)} baseline messages never arrived"
    return [listener.arrivals[k][0] - started[k] for k in started], achieved


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 s runs, < 1 minute")
    p.add_argument("--rate", type=int, default=500, help="alarms per second")
    p.add_argument("--seconds", type=float, default=None, help="seconds per run")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    args = p.parse_args(argv)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    per_run = int(args.rate * seconds) + args.rate
    url = server_url()
    setup_django(
        url,
        BENCH_DB,
        CELERY_BROKER_URL="memory://",
        AMI_CHANNEL_PREFIX=f"ami-bench-alarms-{os.getpid()}",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    server = None
    try:
        meter_ids, users, region_a = make_world(per_run * args.pairs)
        server, port = webserver.start(AMI_WEB_WORKERS="1")
        listener = Listener(port, session_cookie(users["head-office"]))
        stranger = Listener(port, session_cookie(users["south-ops"]))
        results = {"A": [], "B": []}
        baseline_key = 10**9
        for pair in range(args.pairs):
            lat, rate = run_engine(
                args.rate, seconds, meter_ids, pair * per_run, listener, stranger
            )
            results["A"].append((lat, rate))
            lat, rate = run_baseline(
                args.rate, seconds, baseline_key + pair * per_run, region_a.path, listener
            )
            results["B"].append((lat, rate))
        listener.stop()
        stranger.stop()
    finally:
        if server is not None:
            webserver.stop(server)
        if not args.keep:
            drop_database(url, BENCH_DB)

    def med(side, q):
        return statistics.median(percentile(lat, q) for lat, _ in results[side])

    lines = []
    for metric, q in (("p50_latency", 0.50), ("p99_latency", 0.99)):
        a, b = med("A", q) * 1000, med("B", q) * 1000
        lines.append(
            {
                "bench": "alarm_latency",
                "metric": metric,
                "value": round(a, 2),
                "unit": "ms",
                "baseline": round(b, 2),
                "ratio": round(a / b, 2) if b else None,
                "rate_per_s": args.rate,
                "seconds": seconds,
                "pairs": args.pairs,
            }
        )
    achieved_a = statistics.median(r for _, r in results["A"])
    achieved_b = statistics.median(r for _, r in results["B"])
    lines.append(
        {
            "bench": "alarm_latency",
            "metric": "achieved_rate",
            "value": round(achieved_a, 1),
            "unit": "alarms/s",
            "baseline": round(achieved_b, 1),
            "ratio": round(achieved_a / achieved_b, 3),
        }
    )
    for line in lines:
        print(json.dumps(line))
    p50, p99 = lines[0], lines[1]
    print(
        f"\nalarm raise -> websocket at {args.rate}/s ({args.pairs} pairs x {seconds:g} s): "
        f"p50 {p50['value']} ms, p99 {p99['value']} ms "
        f"(bare group_send: p50 {p50['baseline']} ms, p99 {p99['baseline']} ms); "
        f"achieved {achieved_a:.0f}/s; target p99 < 1000 ms: "
        f"{'met' if p99['value'] < 1000 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
