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


def start_worker(
    db_url: str, root: Path = ROOT, name: str = "bench", queues: str = "collect,default"
) -> subprocess.Popen:
    """A Celery worker running the code of checkout `root` on `queues` (comma separated);
    returns once it answers a ping."""
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen(
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
            queues,
            "--concurrency",
            "2",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,  # its errors (stderr) are shown: a dead worker is not silent
    )
    from celery import current_app

    deadline = time.monotonic() + 120
    while not current_app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker of {root} did not start")
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str, float]]:
    """Every process: pid -> (parent pid, name, CPU seconds used so far), one pass of /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    head, tail = f.read().rsplit(")", 1)
            except OSError:
                continue
            fields = tail.split()
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            found[int(entry)] = (int(fields[1]), head.split("(", 1)[1], cpu)
    return found


class CpuMeter:
    """CPU used between `start()` and the last `sample()` by the process trees of `roots`
    (name -> pid) and by the PostgreSQL backends of the bench database (their title names it).

    A process seen at the start counts from there, one appearing later from zero; one that
    exits between samples loses what it used since its last sample (the worker's pool
    processes and its pooled database connections live through a run)."""

    def __init__(self, own: str, **roots: int):
        self.own, self.roots = own, roots  # `own`: this process alone (not its children)
        self.backend: dict[int, bool] = {}  # pid -> serves the bench database

    def _is_backend(self, pid: int, name: str) -> bool:
        if pid not in self.backend:
            title = b""
            if name == "postgres":
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        title = f.read()
                except OSError:
                    pass
            self.backend[pid] = f" {BENCH_DB} ".encode() in title
        return self.backend[pid]

    def _used(self) -> dict[str, dict[int, float]]:
        procs = processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _name, _cpu) in procs.items():
            children.setdefault(ppid, []).append(pid)
        used = {}
        for group, root in self.roots.items():
            tree, todo = [], [root]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(children.get(pid, ()))
            used[group] = {pid: procs[pid][2] for pid in tree if pid in procs}
        used[self.own] = {os.getpid(): procs[os.getpid()][2]}
        used["postgres"] = {
            pid: cpu for pid, (_p, name, cpu) in procs.items() if self._is_backend(pid, name)
        }
        return used

    def start(self):
        self.first = self._used()
        self.last = {group: dict(used) for group, used in self.first.items()}

    def sample(self):
        for group, used in self._used().items():
            self.last[group].update(used)

    def seconds(self) -> dict[str, float]:
        return {
            group: sum(v - self.first[group].get(pid, 0.0) for pid, v in used.items())
            for group, used in self.last.items()
        }


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


def run_e2e(job, worker_pid: int, simulator_pid: int, n: int) -> tuple[float, int, dict]:
    from collection import actions
    from collection.models import JobRun

    cpu = CpuMeter("bench", worker=worker_pid, simulator=simulator_pid)
    cpu.start()
    start = time.perf_counter()
    run = actions.start_run(job)
    peak = 0
    while True:
        time.sleep(0.25)
        cpu.sample()
        peak = max(peak, rss_of_tree(worker_pid))
        current = JobRun.objects.get(pk=run.pk)
        if current.status != "running":
            break
    seconds = time.perf_counter() - start
    cpu.sample()
    assert (current.status, current.succeeded) == ("succeeded", n), (current.status, current.failed)
    return seconds, peak, cpu.seconds()


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


def run_baseline(n: int, simulator_pid: int) -> tuple[float, dict]:
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
    cpu = CpuMeter("reader", simulator=simulator_pid)
    cpu.start()
    start = time.perf_counter()
    outcomes = asyncio.run(read_batch(targets, plan, DatabaseCounterStore(), concurrency=100))
    seconds = time.perf_counter() - start
    cpu.sample()
    assert sum(o.ok for o in outcomes) == n
    return seconds, cpu.seconds()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--meters", type=int)
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--hls", action="store_true")
    parser.add_argument("--memory-meters", type=int, default=0)
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (e.g. main before a change): its worker runs the same job, "
        "alternating with this tree's, against the same baseline",
    )
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
        db_url = f"{url}/{BENCH_DB}"
        trees = {"e2e": ROOT} | ({"against": args.against.resolve()} if args.against else {})
        if not args.against:
            worker = start_worker(db_url)
        seconds_of = {name: [] for name in (*trees, "base")}
        cpu_of_run = {name: [] for name in (*trees, "base")}
        peaks = []
        for pair in range(pairs):
            # With --against, this tree's worker and the other's take turns (order swapped
            # every pair), each started fresh and stopped before the other starts.
            order = list(trees) if pair % 2 == 0 else list(reversed(trees))
            for name in order:
                if args.against:
                    worker = start_worker(db_url, trees[name], name=f"bench-{name}")
                empty_store()
                seconds, peak, cpu = run_e2e(job, worker.pid, simulator.pid, n)
                check_stored(n, manifest)
                if args.against:
                    stop(worker)
                seconds_of[name].append(seconds)
                cpu_of_run[name].append(cpu)
                peaks.append(peak)
            seconds, cpu = run_baseline(n, simulator.pid)
            seconds_of["base"].append(seconds)
            cpu_of_run["base"].append(cpu)
        mode = "hls" if args.hls else "none"
        load = [round(x, 2) for x in os.getloadavg()]
        base_rate = n / statistics.median(seconds_of["base"]) * 60
        # CPU per meter (load-independent, unlike meters/min on a shared machine): every
        # process of A (worker and its pool, simulator, the bench database's backends; not
        # this process polling) against B's (this process reading, the simulator).
        split = {
            name: {k: statistics.median(c[k] for c in runs) * 1000 / n for k in runs[0]}
            for name, runs in cpu_of_run.items()
        }
        b_cpu = sum(split["base"].values())
        rates = {}
        for name, tree in trees.items():
            suffix = "" if name == "e2e" else "_against"
            rates[name] = n / statistics.median(seconds_of[name]) * 60
            emit(
                f"meters_per_minute_e2e{suffix}_{mode}",
                round(rates[name]),
                "meters/min",
                round(base_rate),
                meters=n,
                pairs=pairs,
                tree=str(tree),
                baseline_is="read only, no store, one process",
                load_average=load,
            )
            emit(
                f"cpu_ms_per_meter_e2e{suffix}_{mode}",
                round(sum(v for k, v in split[name].items() if k != "bench"), 2),
                "ms/meter",
                round(b_cpu, 2),
                meters=n,
                pairs=pairs,
                tree=str(tree),
                e2e_split={k: round(v, 2) for k, v in split[name].items()},
                baseline_split={k: round(v, 2) for k, v in split["base"].items()},
                load_average=load,
            )
        if args.against:
            emit(
                f"e2e_vs_against_{mode}",
                round(rates["e2e"]),
                "meters/min",
                round(rates["against"]),
                meters=n,
                pairs=pairs,
                against=str(trees["against"]),
                load_average=load,
            )
        if args.against and args.memory_meters > n:
            worker = start_worker(db_url)  # this tree's, for the memory run
        e2e_rate = rates["e2e"]
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
        a_cpu = sum(v for k, v in split["e2e"].items() if k != "bench")
        print(
            f"# {n} meters, {mode} security: e2e {e2e_rate:.0f} meters/min "
            f"(read-only baseline {base_rate:.0f}); CPU {a_cpu:.2f} ms/meter "
            f"(baseline {b_cpu:.2f}); worker peak {max(peaks) / 2**20:.0f} MiB"
        )
    finally:
        stop(worker)
        stop(simulator)
        drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
