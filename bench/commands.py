"""Disconnect N simulated meters and reconnect them through the command queue, in-process.

A = the queue's own path per meter: command rows queued, then `execute_commands(meter)` (the
    body of the Celery task: claim under the meter's lock, one driver session, read-back,
    record, relay state, audit), one meter after another in this process.
B = baseline in the same run: the same driver sessions (`run_session`, disconnect with its
    read-back) with no database, one after another.
C = the same bare sessions, 100 at once (what a batched executor could reach on this line).
D = the batched path: the same command rows, `execute_command_batch` (the body of the batch
    Celery task: one claim transaction for `AMI_COMMAND_BATCH_SIZE` meters, their sessions
    `AMI_COMMAND_BATCH_CONCURRENCY` at once in one event loop, one record transaction), one
    batch after another in this process.
W = real Celery workers (`--workers N` processes, each `--concurrency 1` on the `collect`
    queue, the Redis broker of REDIS_URL): `queue_commands` for every meter (one insert, batch
    tasks of `AMI_COMMAND_BATCH_SIZE` after commit), timed until every command is confirmed
    (polled every 0.2 s), disconnect then reconnect. The workers are started (and warmed with
    a relay read of every meter) before the clock starts.
Each figure is confirmed commands per second; ratios against B. Asserted: every command is
confirmed and every meter's relay state is recorded.

    .venv/bin/python bench/commands.py --quick      # 200 meters
    .venv/bin/python bench/commands.py --meters 10000 --no-per-meter
    .venv/bin/python bench/commands.py --meters 10000 --no-per-meter --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

BENCH_DB = os.environ.get("AMI_BENCH_DB", "ami_bench_commands")


def emit(metric, value, unit, baseline=None, **extra):
    ratio = round(value / baseline, 3) if baseline else None
    line = {"bench": "commands", "metric": metric, "value": value, "unit": unit}
    line |= {"baseline": baseline, "ratio": ratio, "cores": os.cpu_count(), **extra}
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--no-per-meter", action="store_true", help="skip A (slow: minutes for thousands)"
    )
    parser.add_argument("--workers", type=int, default=0, help="W: this many worker processes")
    args = parser.parse_args()
    count = 200 if args.quick else args.meters
    url = server_url()
    setup_django(url, BENCH_DB)
    try:
        run(count, per_meter=not args.no_per_meter, workers=args.workers)
    finally:
        if not args.keep:
            drop_database(url, BENCH_DB)


def start_workers(n: int) -> list[subprocess.Popen]:
    env = {**os.environ}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "amisite",
                "worker",
                "-Q",
                "collect",
                "--concurrency",
                "1",
                "-n",
                f"bench{i}-{os.getpid()}@%h",
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )  # fmt: skip
        for i in range(n)
    ]


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def run(count: int, per_meter: bool = True, workers: int = 0) -> None:
    from django.conf import settings as django_settings
    from django.utils import timezone

    from accounts.models import Organisation
    from amisite.celery import app
    from collection.commands import actions
    from collection.commands.session import Step, run_session
    from collection.models import CommandState, MeterCommand
    from collection.simulators.dlms_fleet import DlmsFleet, make_meters
    from collection.targets import session_settings
    from meters.models import CommStatus, Meter
    from tests.collection.test_end_to_end import COMMANDER, register_fleet, simulated_model

    org = Organisation.objects.create(name="Bench", code="bench")
    model = simulated_model(org)
    sims = make_meters(count)
    with DlmsFleet(sims, interface="wrapper").running_in_thread() as fleet:
        register_fleet(fleet, sims, org, model, **COMMANDER)
        meters = list(Meter.objects.filter(organisation=org).select_related("meter_model"))

        def queue_all(kind: str, batched: bool = False) -> float:
            MeterCommand.objects.all().delete()
            expires = timezone.now() + timedelta(hours=1)
            MeterCommand.objects.bulk_create(
                MeterCommand(organisation=org, meter=m, kind=kind, expires_at=expires)
                for m in meters
            )
            start = time.perf_counter()
            if batched:
                size = django_settings.AMI_COMMAND_BATCH_SIZE
                for at in range(0, count, size):
                    ids = [m.pk for m in meters[at : at + size]]
                    actions.execute_command_batch(ids, claim=f"bench-{kind}-batch-{at}")
            else:
                for m in meters:
                    actions.execute_commands(m.pk, claim=f"bench-{kind}-{m.pk}")
            elapsed = time.perf_counter() - start
            confirmed = MeterCommand.objects.filter(kind=kind, state=CommandState.CONFIRMED)
            unconfirmed = MeterCommand.objects.exclude(state=CommandState.CONFIRMED)
            assert confirmed.count() == count, (
                f"{unconfirmed.count()} {kind} commands not confirmed, e.g. "
                f"{list(unconfirmed.values_list('state', 'error')[:3])}"
            )
            wanted = "disconnected" if kind == "disconnect" else "connected"
            assert CommStatus.objects.filter(meter__in=meters, relay_state=wanted).count() == count
            return count / elapsed

        settings = [session_settings(m) for m in meters]

        def through_workers(kind: str, timeout_s: float = 600) -> float:
            MeterCommand.objects.all().delete()
            start = time.perf_counter()
            actions.queue_commands(meters, kind, acting_user=None, reason="bench")
            pending = MeterCommand.objects.filter(
                state__in=[CommandState.QUEUED, CommandState.SENT]
            )
            while pending.exists():
                if time.perf_counter() - start > timeout_s:
                    raise TimeoutError(f"{pending.count()} {kind} commands unfinished")
                time.sleep(0.2)
            elapsed = time.perf_counter() - start
            done = MeterCommand.objects.filter(kind=kind, state=CommandState.CONFIRMED).count()
            assert done == count, f"{count - done} {kind} commands not confirmed"
            return count / elapsed

        w_off = w_on = None
        if workers:
            procs = start_workers(workers)
            try:
                app.control.purge()
                through_workers("relay_read", timeout_s=300)  # warm: workers up, modules in
                w_off = through_workers("disconnect")
                w_on = through_workers("connect")
            finally:
                stop_workers(procs)
            # Said at once: the in-process figures below take minutes more.
            print(
                f"W: {count} disconnects confirmed through {workers} workers in "
                f"{count / w_off:.1f} s, reconnects in {count / w_on:.1f} s "
                f"(load average {os.getloadavg()[0]:.1f})",
                flush=True,
            )

        async def bare(kind: str, concurrency: int) -> float:
            gate = asyncio.Semaphore(concurrency)

            async def one(s):
                async with gate:
                    (outcome,) = await run_session(s, [Step(0, kind)])
                    assert outcome.confirmed, outcome.error

            start = time.perf_counter()
            await asyncio.gather(*(one(s) for s in settings))
            return count / (time.perf_counter() - start)

        a_off = queue_all("disconnect") if per_meter else None
        a_on = queue_all("connect") if per_meter else None
        d_off = queue_all("disconnect", batched=True)
        d_on = queue_all("connect", batched=True)
        b_off = asyncio.run(bare("disconnect", 1))
        b_on = asyncio.run(bare("connect", 1))
        c_off = asyncio.run(bare("disconnect", 100))
        c_on = asyncio.run(bare("connect", 100))
    b = (b_off + b_on) / 2
    if workers:
        w = (w_off + w_on) / 2
        emit("workers_commands_per_s", round(w, 1), "commands/s", round(b, 1), meters=count,
             workers=workers, seconds=round(count / w_off + count / w_on, 1))  # fmt: skip
        print(
            f"{count} meters through {workers} Celery workers: {w:.1f}/s (W/B {w / b:.2f}); "
            f"disconnect {count / w_off:.1f} s + reconnect {count / w_on:.1f} s, all confirmed"
        )
    c = (c_off + c_on) / 2
    d = (d_off + d_on) / 2
    if per_meter:
        a = (a_off + a_on) / 2
        emit("queue_commands_per_s", round(a, 1), "commands/s", round(b, 1), meters=count)
        print(f"{count} meters: per-meter queue path {a:.1f}/s (A/B {a / b:.2f})")
    emit("batch_commands_per_s", round(d, 1), "commands/s", round(b, 1), meters=count)
    emit("bare_concurrent_per_s", round(c, 1), "commands/s", round(b, 1), meters=count)
    print(
        f"{count} meters: batched queue path {d:.1f}/s (D/B {d / b:.2f}, D/C {d / c:.2f}), "
        f"bare sessions {b:.1f}/s, bare x100 concurrent {c:.1f}/s; disconnect+reconnect of "
        f"10,000 via the batched path in one process: {20000 / d:.0f} s"
    )


if __name__ == "__main__":
    main()
