"""End to end on this machine, simulator included: schedule -> read -> stored, meters/minute.

A = a run of a read job (clock, registers, one day of 15-minute profile x 4 channels, events)
    executed by a real Celery worker (prefork, 2 processes) against a simulator process,
    from `start_run` until the run is finished and everything is in the store.
B = baseline in the same run: the same sessions read by `collection.reader.read_batch` in
    this process without storing (what the protocol alone costs here).
A and B alternate; figures are medians. The store is emptied between A runs, so every A
reads and stores a full day per meter. Worker memory (RSS of the worker and its pool) is
sampled during A; `--memory-meters` adds one long run to show it stays flat.
Asserted: every meter succeeded, N x 96 interval rows stored, values equal the simulator's.

    .venv/bin/python bench/collection_e2e.py --quick          # 400 meters, 1 pair (< 1 min)
    .venv/bin/python bench/collection_e2e.py                  # 3,000 meters, 3 pairs
    .venv/bin/python bench/collection_e2e.py --hls            # the same with HLS-GMAC
    .venv/bin/python bench/collection_e2e.py --memory-meters 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("AMI_BENCH_DB", "ami_bench_e2e")  # own name: parallel runs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def emit(metric, value, unit, baseline=None, **extra):
    ratio = round(value / baseline, 3) if baseline else None
    line = {
        "bench": "collection_e2e",
        "metric": metric,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "cores": os.cpu_count(),
        **extra,
    }
    print(json.dumps(line), flush=True)


def start_simulator(count: int, port: int, manifest: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amisite.guard",
            sys.executable,
            "-m",
            "collection.simulators.cli",
            "--count",
            str(count),
            "--port",
            str(port),
            "--manifest",
            str(manifest),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not manifest.exists() or manifest.stat().st_size == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.1)
    time.sleep(0.2)
    return proc


def start_worker(db_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amisite.guard",
            sys.executable,
            "-m",
            "celery",
            "-A",
            "amisite",
            "worker",
            "-Q",
            "collect,default",
            "--concurrency",
            "2",
            "-n",
            "bench@%h",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,  # its errors (stderr) are shown: a dead worker is not silent
    )


def rss_of_tree(pid: int) -> int:
    """Resident memory (bytes) of a process and its children."""
    total = 0
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def register(manifest: list[dict], hls: bool):
    from accounts.models import Organisation
    from meters.choices import ChannelKind, MeterStatus
    from meters.models import Channel, Meter, MeterModel

    org = Organisation.objects.create(name="Bench", code="bench")
    model = MeterModel.objects.create(manufacturer="Sim", name="DLMS", organisation=org)
    for ch in (1, 2, 3, 4):
        unit = "Wh" if ch < 3 else "varh"
        Channel.objects.create(
            meter_model=model,
            obis=f"1-0:{ch}.29.0*255",
            name=f"p{ch}",
            unit=unit,
            kind=ChannelKind.PROFILE,
            profile_obis="1-0:99.1.0*255",
        )
        Channel.objects.create(
            meter_model=model,
            obis=f"1-0:{ch}.8.0*255",
            name=f"r{ch}",
            unit=unit,
            kind=ChannelKind.REGISTER,
        )
    Channel.objects.create(
        meter_model=model,
        obis="0-0:99.98.0*255",
        name="events",
        kind=ChannelKind.EVENT_LOG,
        profile_obis="0-0:99.98.0*255",
    )
    meters = []
    for m in manifest:
        meter = Meter(
            serial=m["serial"],
            meter_model=model,
            organisation=org,
            status=MeterStatus.ACTIVE,
            host=m["host"],
            port=m["port"],
            dlms_server_address=m["server_address"],
            timeout_s=20,
            retries=1,
        )
        if hls:
            meter.security, meter.dlms_client_address = "high", 1
            meter.auth_key, meter.block_key = m["auth_key"], m["block_key"]
            meter.system_title = m["system_title"]
        meters.append(meter)
    Meter.objects.bulk_create(meters, batch_size=2000)
    return org, model


def empty_store():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE meters_intervalreading, meters_registerread, meters_eventrecord, "
            "meters_dailyenergy, collection_commstatus, collection_meterreadresult, "
            "collection_jobrun CASCADE"
        )


def run_e2e(job, worker_pid: int, n: int) -> tuple[float, int]:
    from collection import actions
    from collection.models import JobRun

    start = time.perf_counter()
    run = actions.start_run(job)
    peak = 0
    while True:
        time.sleep(0.25)
        peak = max(peak, rss_of_tree(worker_pid))
        current = JobRun.objects.get(pk=run.pk)
        if current.status != "running":
            break
    seconds = time.perf_counter() - start
    assert (current.status, current.succeeded) == ("succeeded", n), (current.status, current.failed)
    return seconds, peak


def check_stored(n: int, manifest: list[dict]):
    from collection.simulators import model as sim
    from meters.models import Channel, Meter
    from meters.store import IntervalReading

    # A day of intervals plus the capture at its start (profile ranges include both ends).
    assert IntervalReading.objects.count() == n * 97, IntervalReading.objects.count()
    meter = Meter.objects.get(serial=manifest[0]["serial"])
    channel = Channel.objects.get(meter_model=meter.meter_model, obis="1-0:1.29.0*255")
    for row in IntervalReading.objects.filter(meter=meter, group=channel.profile_group)[:97]:
        k = sim.completed_intervals(row.ts) - 1
        assert row.column(channel.profile_column)[0] == sim.interval_value(meter.serial, 1, k)


def run_baseline(n: int) -> float:
    from django.utils import timezone

    from collection.counters import DatabaseCounterStore
    from collection.reader import ReadPlan, default_window, read_batch
    from collection.targets import TARGET_RELATED, build_target
    from meters.models import Meter

    targets = [build_target(m) for m in Meter.objects.select_related(*TARGET_RELATED)]
    since, until = default_window(timezone.now())
    plan = ReadPlan(
        items=frozenset({"clock", "registers", "profile", "events"}),
        until=until,
        default_since=since,
        retries=1,
        retry_backoff_s=1,
    )
    start = time.perf_counter()
    outcomes = asyncio.run(read_batch(targets, plan, DatabaseCounterStore(), concurrency=100))
    seconds = time.perf_counter() - start
    assert sum(o.ok for o in outcomes) == n
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--meters", type=int)
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--hls", action="store_true")
    parser.add_argument("--memory-meters", type=int, default=0)
    args = parser.parse_args()
    n = args.meters or (400 if args.quick else 3000)
    pairs = args.pairs or (1 if args.quick else 3)
    from django.core.exceptions import ImproperlyConfigured

    from amisite.config import broker_url_from_env, check_shared_broker, redis_url_from_env

    try:  # before anything is created: the worker would otherwise wait forever
        check_shared_broker(broker_url_from_env(redis_url_from_env()), "bench/collection_e2e.py")
    except ImproperlyConfigured as exc:
        sys.exit(f"configuration error: {exc}")
    from bench.benchdb import drop_database, server_url, setup_django

    url = server_url()
    setup_django(url, BENCH_DB)
    total = max(n, args.memory_meters)
    workdir = Path(tempfile.mkdtemp(prefix="ami-e2e-"))
    manifest_path = workdir / "meters.json"
    simulator = start_simulator(total, free_port(), manifest_path)
    worker = None
    try:
        manifest = json.loads(manifest_path.read_text())
        org, _model = register(manifest[:n], args.hls)
        from collection.models import ReadJob

        job = ReadJob.objects.create(
            name="bench",
            organisation=org,
            batch_size=250,
            concurrency=100,
            retries=1,
            retry_backoff_s=1,
            items=["clock", "registers", "profile", "events"],
            # The same window as the baseline's reads: with the store emptied, a backfill
            # horizon would make every A read a week instead of a day.
            backfill_days=0,
        )
        worker = start_worker(f"{url}/{BENCH_DB}")
        time.sleep(3)
        e2e, base, peaks = [], [], []
        for _ in range(pairs):
            empty_store()
            seconds, peak = run_e2e(job, worker.pid, n)
            check_stored(n, manifest)
            e2e.append(seconds)
            peaks.append(peak)
            base.append(run_baseline(n))
        mode = "hls" if args.hls else "none"
        e2e_rate = n / statistics.median(e2e) * 60
        base_rate = n / statistics.median(base) * 60
        emit(
            f"meters_per_minute_e2e_{mode}",
            round(e2e_rate),
            "meters/min",
            round(base_rate),
            meters=n,
            pairs=pairs,
            baseline_is="read only, no store, one process",
        )
        emit(f"worker_peak_rss_{mode}", round(max(peaks) / 2**20, 1), "MiB", meters=n)
        if args.memory_meters > n:
            from meters.models import Meter

            extra = manifest[n : args.memory_meters]
            model = Meter.objects.first().meter_model
            Meter.objects.bulk_create(
                [
                    Meter(
                        serial=m["serial"],
                        meter_model=model,
                        organisation=org,
                        host=m["host"],
                        port=m["port"],
                        dlms_server_address=m["server_address"],
                        timeout_s=20,
                    )
                    for m in extra
                ],
                batch_size=2000,
            )
            empty_store()
            samples = []
            from collection import actions
            from collection.models import JobRun

            run = actions.start_run(job)
            while JobRun.objects.get(pk=run.pk).status == "running":
                time.sleep(2)
                done = JobRun.objects.get(pk=run.pk).done
                samples.append((done, rss_of_tree(worker.pid)))
            first = next((rss for done, rss in samples if done >= args.memory_meters * 0.1), 0)
            last = samples[-1][1] if samples else 0
            emit(
                "worker_rss_growth_over_run",
                round((last - first) / 2**20, 1),
                "MiB",
                meters=args.memory_meters,
                rss_at_10pct_mib=round(first / 2**20, 1),
                rss_at_end_mib=round(last / 2**20, 1),
            )
        print(
            f"# {n} meters, {mode} security: e2e {e2e_rate:.0f} meters/min "
            f"(read-only baseline {base_rate:.0f}); worker peak {max(peaks) / 2**20:.0f} MiB"
        )
    finally:
        for proc in (worker, simulator):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
