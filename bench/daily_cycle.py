"""Benchmark: a day of N simulated meters through the real path, step by step, CPU per process.

Everything is the product's own machinery on this machine, in a throwaway PostgreSQL
database (`ami_bench_daily`, or AMI_BENCH_DB; created, migrated and dropped here):

* the fleet: N meters in 4 regions (utility -> region -> substation -> feeders of 10
  transformers of 50 service points), DLMS/COSEM over TCP (WRAPPER) for ~98.5 %, and 0.5 %
  each of IEC 62056-21, IEC 870-5-102 and Modbus TCP on shared lines (a converter or gateway
  of up to 100 meters: they take turns). Simulator processes (`collection.simulators.cli`,
  what `manage.py simulate_meters` runs) serve them over loopback: DLMS up to 25,000 meters
  per process and port, one process per line otherwise. A few DLMS meters (1 in 4,000, at
  least 3) point at a port where nothing listens in the night: unreachable;
* the schedule: one `ReadJob` per region, daily at 01:00, 02:00, 03:00, 04:00, written to
  the beat's tables by `collection.scheduling.sync_schedule`, and a catch-up job at 06:30
  for the night's failures (its meter list filled at 06:00 from the failed results, when
  the unreachable meters' modems are back: their simulator starts then);
* the day, compressed: the beat's own test -- celery's crontab `is_due` on each
  `PeriodicTask` row -- is walked over the 24 simulated hours; each due slot is sent as beat
  sends it (`send_task` of the row's task, args and queue; `last_run_at` and
  `total_run_count` updated), and the next slot is sent when the previous slot's run has
  finished, so each step is timed alone;
* `run_read_job` runs in a real Celery worker (`default` queue) and enqueues the run's read
  batches on Redis, one queue per region and protocol (`AMI_COLLECT_ROUTE_BY=region,protocol`);
  two worker processes (prefork, 2 children each; each takes every queue) read the meters
  (clock, registers, a day of 15-minute profile x 4 channels, event log) and store them
  through `collection.ingest` (validation, estimation, daily rollup, event-driven alarms);
* then, in this process: the alarm derivations (beat: every 15 min; measured passes scaled
  to 96 a day), the day's rollups recomputed set-based (against a raw GROUP BY), the billing
  determinants export of the month so far (against a raw SQL of the register differences),
  the energy balance of every feeder and transformer for the day, and the dashboard home
  rendered through Django's test client for a utility-wide user and a region's operator.

Per step: wall time, CPU seconds per process kind (bench = this process, worker, simulator,
postgres = the bench database's backends), rows, meters per CPU-second; the collection
step also against a baseline measured in the same run (the same protocol sessions of a
sample of DLMS meters read in this process without storing). Checked at the end (the run
fails loudly otherwise): every meter read exactly once OK over the day, the unreachable
ones failed in the night (after their retry) and read by the catch-up, every profile meter
96-97 intervals, nothing duplicated. Scaled to 1,000,000 meters from the CPU seconds.

    nice -n 10 .venv/bin/python bench/daily_cycle.py --quick          # 1,000 meters, minutes
    nice -n 10 .venv/bin/python bench/daily_cycle.py --meters 10000
    nice -n 10 .venv/bin/python bench/daily_cycle.py --meters 100000  # the issue's fleet

`--port-base P` puts the simulators' listeners at P, P+1, ... (default: free ports).
The ingest-level figures (storing against a raw COPY, compaction) are `bench/daily_store.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AMI_BENCH_DB", "ami_bench_daily")
BENCH_DB = os.environ["AMI_BENCH_DB"]

from bench.collection_e2e import CpuMeter, start_worker, stop  # noqa: E402  (reads AMI_BENCH_DB)

FLEET = 1_000_000
REGIONS = ("north", "south", "east", "west")
POINTS, TRANSFORMERS = 50, 10  # service points per transformer, transformers per feeder
DLMS_PER_PROCESS = 25_000
LINE_SIZE = 100
LINE_SHARE = 0.005  # of each line protocol
ITEMS = ["clock", "registers", "profile", "events"]
KINDS = ("bench", "worker", "simulator", "postgres")
# The simulator's --protocol names -> the endpoint's protocol values.
PROTOCOL_OF = {
    "dlms": "dlms",
    "iec62056-21": "iec62056_21",
    "iec870-102": "iec870_102",
    "modbus": "modbus",
}
TEST_ENV = {"AMI_COLLECT_ROUTE_BY": "region,protocol"}


PROBLEMS: list[str] = []


def check(condition: bool, problem: str) -> None:
    """A failed check is printed at once and fails the run at its end (after the figures)."""
    if not condition:
        PROBLEMS.append(problem)
        print(f"# CHECK FAILED: {problem}", flush=True)


def emit(metric, value, unit, **extra):
    line = {"bench": "daily_cycle", "metric": metric, "value": value, "unit": unit, **extra}
    print(json.dumps(line, default=str), flush=True)


def log(text: str) -> None:
    print(f"# {datetime.now(UTC):%H:%M:%S} {text}", flush=True)


class Ports:
    def __init__(self, base: int | None):
        self.next = base

    def take(self) -> int:
        if self.next is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return sock.getsockname()[1]
        self.next += 1
        return self.next - 1


# ------------------------------------------------------------------ the fleet


class Plan:
    """Who is where: per protocol the simulator processes (port, first serial, count) and
    the meters' region; the unreachable DLMS meters and their (dead by night) port."""

    def __init__(self, n: int, ports: Ports):
        self.n = n
        per_line = max(1, round(n * LINE_SHARE))
        self.lines = []  # (protocol, port, first_serial, count, region index)
        line_no = 0
        for p, (protocol, first) in enumerate(
            (("iec62056-21", 60_000_001), ("iec870-102", 70_000_001), ("modbus", 80_000_001))
        ):
            left, serial = per_line, first
            while left:
                count = min(LINE_SIZE, left)
                self.lines.append((protocol, ports.take(), serial, count, (line_no + p) % 4))
                serial += count
                left -= count
                line_no += 1
        self.dead_count = max(3, n // 4000)
        dlms = n - sum(line[3] for line in self.lines) - self.dead_count
        self.dlms = []  # (port, first serial, count)
        serial = 10_000_001
        for i in range(math.ceil(dlms / DLMS_PER_PROCESS)):
            count = min(DLMS_PER_PROCESS, dlms - i * DLMS_PER_PROCESS)
            self.dlms.append((ports.take(), serial, count))
            serial += count
        self.dead = (ports.take(), 50_000_001, self.dead_count)


def simulator_argv(protocol: str, port: int, first: int, count: int, manifest: Path) -> list:
    argv = [sys.executable, "-m", "amisite.guard", sys.executable, "-m"]
    argv += ["collection.simulators.cli", "--protocol", protocol, "--port", str(port)]
    argv += ["--count", str(count), "--first-serial", str(first), "--manifest", str(manifest)]
    argv += ["--idle-timeout", "600"]
    if protocol == "iec870-102":
        argv += ["--password", "20260"]
    return argv


def start_simulators(specs: list[tuple], workdir: Path) -> list[subprocess.Popen]:
    procs, manifests = [], []
    for i, (protocol, port, first, count) in enumerate(specs):
        manifest = workdir / f"sim-{port}-{i}.json"
        procs.append(
            subprocess.Popen(
                simulator_argv(protocol, port, first, count, manifest),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
        )
        manifests.append(manifest)
    deadline = time.monotonic() + 300
    for proc, manifest in zip(procs, manifests, strict=True):
        while not manifest.exists() or manifest.stat().st_size == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a simulator did not start ({manifest.name})")
            time.sleep(0.2)
    return procs


def channels(model, rows) -> None:
    from meters.models import Channel

    for o, name, u, k, p in rows:  # one by one: saving gives a profile channel its column
        Channel.objects.create(meter_model=model, obis=o, name=name, unit=u, kind=k, profile_obis=p)


def meter_models(org):
    from meters.choices import ChannelKind, Protocol
    from meters.demo import DEMO_CHANNELS
    from meters.models import MeterModel

    energy = list(DEMO_CHANNELS[:4])
    models = {}
    # The demo's DLMS model without its two tariff registers: the simulator sums a tariff
    # over every interval since its epoch (~6 ms a read), CPU a real meter spends, not the
    # head-end, and it would take the shared cores from what is measured here.
    m = MeterModel.objects.create(manufacturer="Sim", name="DLMS-3P", organisation=org)
    channels(m, [c for c in DEMO_CHANNELS if c[0] not in ("1-0:1.8.1*255", "1-0:1.8.2*255")])
    models["dlms"] = m
    m = MeterModel.objects.create(
        manufacturer="Sim", name="SIM21", protocol=Protocol.IEC62056_21, organisation=org
    )
    channels(m, energy)
    models["iec62056_21"] = m
    m = MeterModel.objects.create(
        manufacturer="Sim", name="5CTM", protocol=Protocol.IEC870_102, organisation=org
    )
    p = ChannelKind.PROFILE
    profile = [
        (f"1-0:{c}.29.0*255", f"profile {c}", "Wh" if c < 3 else "varh", p, "1-0:99.1.0*255")
        for c in (1, 2, 5, 8)
    ]
    log_row = ("0-0:99.98.0*255", "supply events", "", ChannelKind.EVENT_LOG, "0-0:99.98.0*255")
    channels(m, profile + energy[:2] + [log_row])
    models["iec870_102"] = m
    m = MeterModel.objects.create(
        manufacturer="Eastron", name="SDM630", protocol=Protocol.MODBUS, organisation=org
    )
    channels(m, energy)
    models["modbus"] = m
    return models


def grid(utility, points_per_region: list[int]):
    """Regions (organisations and grid nodes) down to service points; returns per region
    its organisation and its service point ids, and all feeders and transformers."""
    from django.db import connection

    from accounts.actions import create_organisation
    from accounts.models import Organisation
    from meters.choices import NodeKind
    from meters.models import GridNode

    out = []
    for code, count in zip(REGIONS, points_per_region, strict=True):
        org = create_organisation(Organisation(name=code.title(), code=code, parent=utility))
        region = GridNode.objects.create(
            kind=NodeKind.REGION, code=code, name=code, organisation=org
        )
        sub = GridNode.objects.create(
            kind=NodeKind.SUBSTATION, code=f"{code}-S1", name="S1", parent=region, organisation=org
        )
        n_tr = math.ceil(count / POINTS)
        feeders = [
            GridNode(
                kind=NodeKind.FEEDER,
                code=f"{code}-F{f}",
                name=f"F{f}",
                parent=sub,
                organisation=org,
            )
            for f in range(math.ceil(n_tr / TRANSFORMERS))
        ]
        GridNode.objects.bulk_create(feeders)
        trs = [
            GridNode(
                kind=NodeKind.TRANSFORMER,
                code=f"{code}-T{t}",
                name=f"T{t}",
                parent=feeders[t // TRANSFORMERS],
                organisation=org,
            )
            for t in range(n_tr)
        ]
        GridNode.objects.bulk_create(trs)
        sps = [
            GridNode(
                kind=NodeKind.SERVICE_POINT,
                code=f"{code}-P{i}",
                name=f"P{i}",
                parent=trs[i // POINTS],
                organisation=org,
            )
            for i in range(count)
        ]
        GridNode.objects.bulk_create(sps, batch_size=5000)
        out.append((org, [sp.pk for sp in sps]))
    with connection.cursor() as cur:  # the paths bulk_create left empty, level by level
        for _ in range(3):
            cur.execute(
                "UPDATE meters_gridnode c SET path = p.path || c.id || '/' FROM meters_gridnode p"
                " WHERE c.parent_id = p.id AND c.path = '' AND p.path <> ''"
            )
    return out


def register_fleet(plan: Plan):
    """Organisations, grid, models and the N meters (with their endpoints); returns the
    utility and the serials of the unreachable meters."""
    from accounts.actions import create_organisation
    from accounts.models import Organisation
    from meters.choices import MeterStatus, Protocol
    from meters.models import Meter

    utility = create_organisation(Organisation(name="Bench utility", code="bench"))
    models = meter_models(utility)
    rows = []  # (region index, dict of Meter fields)
    for sim_protocol, port, first, count, region in plan.lines:
        protocol = PROTOCOL_OF[sim_protocol]
        for i in range(count):
            serial = str(first + i)
            fields = {"protocol": protocol, "host": "127.0.0.1", "port": port}
            if protocol == Protocol.IEC62056_21:
                fields |= {"iec21_address": serial, "password": "00000000"}
            elif protocol == Protocol.IEC870_102:
                fields |= {
                    "iec102_link_address": i + 1,
                    "iec102_measuring_point": i + 1,
                    "password": "20260",
                }
            else:
                fields |= {"modbus_unit_id": i + 1}
            rows.append((region, serial, fields))
    k = 0
    for port, first, count in plan.dlms:
        for i in range(count):
            fields = {
                "host": "127.0.0.1",
                "port": port,
                "dlms_server_address": i + 1,
                "protocol": Protocol.DLMS,
            }
            rows.append((k % 4, str(first + i), fields))
            k += 1
    port, first, count = plan.dead
    dead = [str(first + i) for i in range(count)]
    for i, serial in enumerate(dead):
        fields = {
            "host": "127.0.0.1",
            "port": port,
            "dlms_server_address": i + 1,
            "protocol": Protocol.DLMS,
        }
        rows.append((i % 4, serial, fields))
    per_region = Counter(region for region, _s, _f in rows)
    regions = grid(utility, [per_region[r] for r in range(4)])
    taken = [0, 0, 0, 0]
    meters = []
    for region, serial, fields in rows:
        org, points = regions[region]
        sp = points[taken[region]]
        taken[region] += 1
        meters.append(
            Meter(
                serial=serial,
                meter_model=models[fields["protocol"]],
                organisation=org,
                service_point_id=sp,
                status=MeterStatus.ACTIVE,
                timeout_s=30,
                **fields,
            )
        )
        if len(meters) == 5000:
            Meter.objects.bulk_create(meters)
            meters = []
    Meter.objects.bulk_create(meters)
    return utility, [org for org, _p in regions], dead


def make_jobs(utility, regions):
    from collection.models import ReadJob
    from collection.scheduling import sync_schedule

    jobs = []
    for hour, org in enumerate(regions, start=1):
        job = ReadJob.objects.create(
            name=f"{org.name}: daily",
            organisation=org,
            items=ITEMS,
            crontab=f"0 {hour} * * *",
            batch_size=250,
            concurrency=100,
            retries=1,
            retry_backoff_s=1,
            backfill_days=0,  # the day's window (an empty store would read a week)
        )
        sync_schedule(job)
        jobs.append(job)
    catch_up = ReadJob.objects.create(
        name="catch-up: the night's failures",
        organisation=utility,
        items=ITEMS,
        crontab="30 6 * * *",
        enabled=False,
        batch_size=250,
        concurrency=100,
        retries=1,
        retry_backoff_s=1,
        backfill_days=0,  # the day's window (an empty store would read a week)
    )
    sync_schedule(catch_up)
    return jobs, catch_up


# ------------------------------------------------------------------ workers


def start_workers(db_url: str, queues: list[str], count: int) -> list[subprocess.Popen]:
    """`count` workers (2 prefork children each), every one on all `queues`."""
    return [start_worker(db_url, name=f"daily{i}", queues=",".join(queues)) for i in range(count)]


# ------------------------------------------------------------------ measuring


class Step:
    def __init__(self, name: str, meter: CpuMeter):
        self.name, self.meter = name, meter
        self.wall = 0.0
        self.cpu: dict[str, float] = {}

    def __enter__(self):
        self.meter.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.meter.sample()
        raw = self.meter.seconds()
        self.cpu = dict.fromkeys(KINDS, 0.0)
        for group, seconds in raw.items():
            kind = next((k for k in KINDS if group.startswith(k)), group)
            self.cpu[kind] = self.cpu.get(kind, 0.0) + seconds


def cpu_meter(workers, simulators) -> CpuMeter:
    roots = {f"worker{i}": p.pid for i, p in enumerate(workers)}
    roots |= {f"simulator{i}": p.pid for i, p in enumerate(simulators)}
    return CpuMeter("bench", **roots)


# ------------------------------------------------------------------ the day


def day_slots(day: datetime):
    """(time, PeriodicTask id) of every read-job slot in the simulated day, in order, as
    beat finds them: each row's crontab (celery's, in the row's zone) asked `is_due`."""
    from celery.schedules import crontab
    from django_celery_beat.models import PeriodicTask

    found = []
    for task in PeriodicTask.objects.filter(task="collection.run_read_job").select_related(
        "crontab"
    ):
        c = task.crontab
        clock = {"now": day}
        schedule = crontab(
            minute=c.minute,
            hour=c.hour,
            day_of_week=c.day_of_week,
            day_of_month=c.day_of_month,
            month_of_year=c.month_of_year,
            nowfun=lambda clock=clock: clock["now"],
        )
        last = day
        while clock["now"] < day + timedelta(days=1):
            due, next_in = schedule.is_due(last)
            if due:
                found.append((clock["now"], task.pk))
                last = clock["now"]
            clock["now"] += timedelta(seconds=max(next_in, 1))
    return sorted(found)


def send_slot(task_id: int, at: datetime) -> bool:
    """Beat's send: the row's task with its args to its queue; the row remembers the run.
    A disabled row is skipped, as beat skips it."""
    from celery import current_app
    from django.db.models import F
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(pk=task_id)
    if not task.enabled:
        return False
    current_app.send_task(task.task, args=json.loads(task.args), queue=task.queue)
    PeriodicTask.objects.filter(pk=task_id).update(
        last_run_at=at, total_run_count=F("total_run_count") + 1
    )
    return True


def wait_run(job, after_pk: int, meter: CpuMeter, timeout: float):
    from collection.models import JobRun

    deadline = time.monotonic() + timeout
    while True:
        meter.sample()
        run = JobRun.objects.filter(job=job, pk__gt=after_pk).order_by("pk").first()
        if run is not None and run.status not in ("running", "pending"):
            return run
        if time.monotonic() > deadline:
            raise RuntimeError(f"run of {job.name} not finished after {timeout:.0f} s")
        time.sleep(0.5)


def baseline_read(sample: int) -> tuple[float, float, int, Counter]:
    """The same protocol sessions of `sample` DLMS meters read in this process, no store."""
    from django.utils import timezone

    from collection.counters import DatabaseCounterStore
    from collection.reader import ReadPlan, default_window, read_batch
    from collection.targets import TARGET_RELATED, build_target
    from meters.models import Meter

    meters = Meter.objects.filter(endpoint__protocol="dlms", endpoint__port__isnull=False)
    meters = meters.exclude(serial__startswith="5").select_related(*TARGET_RELATED)
    targets = [build_target(m) for m in meters.order_by("pk")[:sample]]
    since, until = default_window(timezone.now())
    plan = ReadPlan(
        items=frozenset(ITEMS), until=until, default_since=since, retries=1, retry_backoff_s=1
    )
    w0, c0 = time.perf_counter(), time.process_time()
    outcomes = asyncio.run(read_batch(targets, plan, DatabaseCounterStore(), concurrency=100))
    errors = Counter(repr(o.error)[:120] for o in outcomes if not o.ok)
    return time.perf_counter() - w0, time.process_time() - c0, sum(o.ok for o in outcomes), errors


def report_step(step: Step, n_meters: int, count: int, unit: str, runs_per_day=1, **extra):
    cpu = sum(step.cpu.values())
    core_h = cpu * FLEET / n_meters * runs_per_day / 3600
    emit(
        f"{step.name}_s",
        round(step.wall, 2),
        "s",
        cpu_s=round(cpu, 2),
        cpu_by_kind={k: round(v, 2) for k, v in step.cpu.items()},
        count=count,
        unit_of=unit,
        per_cpu_s=round(count / cpu, 1) if cpu else None,
        runs_per_day=runs_per_day,
        core_h_at_1m_meters=round(core_h, 3),
        meters=n_meters,
        load_average=[round(x, 2) for x in os.getloadavg()],
        **extra,
    )
    return core_h


def run(n: int, ports: Ports, workdir: Path, db_url: str, alarm_passes: int, procs: list) -> None:
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from collection import queues
    from collection.models import JobRun, MeterReadResult
    from meters.alarms.engine import derive_events
    from meters.alarms.models import Alarm
    from meters.models import Meter
    from meters.store import rollups
    from meters.store.days import local_zone
    from reports import balance, billing, billing_export

    t0 = time.perf_counter()
    plan = Plan(n, ports)
    utility, regions, dead = register_fleet(plan)
    jobs, catch_up = make_jobs(utility, regions)
    sims = start_simulators(
        [(p, port, first, count) for p, port, first, count, _r in plan.lines]
        + [("dlms", port, first, count) for port, first, count in plan.dlms],
        workdir,
    )
    procs.extend(sims)
    worker_queues = [*queues.fleet_queues(), "default"]
    workers = start_workers(db_url, worker_queues, 2)
    procs.extend(workers)
    meter = cpu_meter(workers, sims)
    mix = Counter(Meter.objects.values_list("endpoint__protocol", flat=True))
    emit(
        "setup",
        round(time.perf_counter() - t0, 1),
        "s",
        meters=n,
        protocols=dict(mix),
        unreachable=len(dead),
        simulator_processes=len(sims),
        worker_processes=len(workers),
        queues=len(worker_queues),
    )
    log(f"{n} meters registered, {len(sims)} simulators, queues {worker_queues}")

    # Baseline, same run: the protocol alone (a sample of DLMS meters, no store).
    sample = min(1000, n // 2)
    with Step("baseline", meter) as base:
        b_wall, _own, b_ok, b_errors = baseline_read(sample)
    b_cpu = sum(base.cpu.values()) - base.cpu["worker"]  # this process, simulator, postgres
    check(b_ok >= sample * 0.9, f"baseline read {b_ok}/{sample}: {b_errors.most_common(3)}")

    day = (
        datetime.now(UTC)
        .astimezone(local_zone())
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    core_h = {}
    collected = Step("collection", meter)
    collected.cpu = dict.fromkeys(KINDS, 0.0)
    slots = []
    dead_sim = None
    for at, task_id in day_slots(day):
        if at.hour >= 6 and dead_sim is None:  # morning: the unreachable modems are back
            dead_sim = start_simulators([("dlms", *plan.dead)], workdir)
            procs.extend(dead_sim)
            meter.roots["simulator_dead"] = dead_sim[0].pid
            failed = MeterReadResult.objects.filter(run__job__in=jobs, status="failed")
            catch_up.meters.set(list(failed.values_list("meter_id", flat=True)))
            catch_up.enabled = True
            catch_up.save()
            from collection.scheduling import sync_schedule

            sync_schedule(catch_up)
        job = next(j for j in [*jobs, catch_up] if j.periodic_task_id == task_id)
        last = JobRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        with Step(f"slot_{at:%H%M}", meter) as step:
            if not send_slot(task_id, at):
                continue
            done = wait_run(job, last, meter, timeout=3 * 3600)
        slots.append((at, job, done, step))
        for k, v in step.cpu.items():
            collected.cpu[k] = collected.cpu.get(k, 0.0) + v
        collected.wall += step.wall
        report_step(
            step,
            n,
            done.total,
            "meters",
            job=job.name,
            succeeded=done.succeeded,
            failed=done.failed,
            status=done.status,
            slot=f"{at:%H:%M}",
        )
        log(f"slot {at:%H:%M} {job.name}: {done.succeeded}/{done.total} in {step.wall:.0f} s")
        # The beat's alarm derivations between the slots (every 15 minutes all day).
    read_ok = sum(d.succeeded for _a, _j, d, _s in slots)
    core_h["collection"] = report_step(
        collected,
        n,
        read_ok,
        "meters read",
        baseline_wall_s=round(b_wall * n / sample, 1),
        baseline_cpu_s=round(b_cpu * n / sample, 1),
        baseline_ok=f"{b_ok}/{sample}",
        baseline_is=(
            f"the same sessions of {sample} DLMS meters read in this process, not stored, "
            "scaled to the fleet"
        ),
    )

    # Checks: every meter read OK exactly once; the unreachable failed at night, then read.
    ok = Counter(MeterReadResult.objects.filter(status="ok").values_list("meter_id", flat=True))
    check(
        len(ok) == n and set(ok.values()) == {1},
        f"{len(ok)} of {n} meters read OK, times read OK: {Counter(ok.values())}",
    )
    night_failed = set(
        MeterReadResult.objects.filter(run__job__in=jobs, status="failed").values_list(
            "meter__serial", flat=True
        )
    )
    # Every unreachable meter failed in the night; others may have too (a session timed out
    # twice on this loaded machine): all were read by the catch-up.
    check(night_failed >= set(dead), f"unreachable not failed: {set(dead) - night_failed}")
    with connection.cursor() as cur:
        cur.execute(
            "SELECT n, count(*) FROM (SELECT meter_id, count(*) n FROM meters_intervalreading "
            "GROUP BY meter_id) x GROUP BY n ORDER BY n"
        )
        per_meter = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM meters_intervalreading")
        intervals = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM meters_registerread")
        registers = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM meters_eventrecord")
        events = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM meters_dailyenergy")
        daily = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM meters_intervalreading WHERE q <> 0")
        flagged = cur.fetchone()[0]
    profile_meters = n - sum(c for p, _port, _f, c, _r in plan.lines if p != "iec870-102")
    check(
        sum(per_meter.values()) == profile_meters,
        f"{sum(per_meter.values())} meters with a profile stored, {profile_meters} expected",
    )
    # A day of 15-minute intervals (DLMS: 96, or 97 with the capture at the window's start);
    # the IEC 870-5-102 simulator's profile is hourly (24-25).
    check(
        set(per_meter) <= {24, 25, 96, 97},
        f"intervals per meter outside a day's: {per_meter}",
    )
    attempts = Counter(
        MeterReadResult.objects.filter(meter__serial__in=dead).values_list("attempts", flat=True)
    )  # the unreachable meters' sessions tried per run (job retries=1: 2)
    emit(
        "stored",
        intervals,
        "interval rows",
        intervals_per_meter=per_meter,
        register_reads=registers,
        events=events,
        daily_rollup_rows=daily,
        flagged_rows=flagged,
        failed_at_night=len(night_failed),
        unreachable=len(dead),
        other_night_failures=len(night_failed - set(dead)),
        unreachable_attempts=dict(attempts),
        meters_read_ok_once=len(ok),
    )
    alarms_after_ingest = Alarm.objects.count()

    user = User.objects.create_superuser("bench", "b@example.invalid", "pw", organisation=utility)
    now = timezone.now()
    # Alarm derivations: the beat's every-15-minute pass, a few measured, scaled to 96.
    with Step("alarms", meter) as step:
        for i in range(alarm_passes):
            derive_events(now=now + timedelta(minutes=15 * i))
    by_kind = Counter(Alarm.objects.values_list("kind", flat=True))
    core_h["alarms"] = report_step(
        step,
        n,
        n * alarm_passes,
        "meter-passes",
        runs_per_day=96 / alarm_passes,
        alarms_from_events=alarms_after_ingest,
        alarms_by_kind=dict(by_kind),
    )

    local_today = now.astimezone(local_zone()).date()
    first_day = local_today - timedelta(days=1)
    days = {m: (now - timedelta(days=1, minutes=15), now) for m in ok}
    with Step("rollups", meter) as step:
        rollups.refresh(rollups.days_touched(days))
    w0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT meter_id, grp, sum(v0), sum(v1), sum(v2), sum(v3), count(*) FROM "
            "meters_intervalreading GROUP BY meter_id, grp"
        )
        grouped = len(cur.fetchall())
    core_h["rollups"] = report_step(
        step,
        n,
        profile_meters,
        "meters",
        baseline_wall_s=round(time.perf_counter() - w0, 2),
        baseline_is=f"raw GROUP BY ({grouped} meter groups)",
    )

    period = billing.Period.month(f"{local_today:%Y-%m}")
    with Step("billing", meter) as step, tempfile.NamedTemporaryFile(suffix=".csv") as out:
        written = billing_export.write_export(billing.meters_for(user), period, "csv", out.name)
    check(written.ready + len(written.held) == n, f"billing export: {written}")
    w0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT meter_id, channel_id, max(value) - min(value) FROM meters_registerread "
            "GROUP BY meter_id, channel_id"
        )
        cur.fetchall()
    core_h["billing"] = report_step(
        step,
        n,
        n,
        "meters",
        ready=written.ready,
        held=len(written.held),
        baseline_wall_s=round(time.perf_counter() - w0, 2),
        baseline_is="raw SQL of the register differences",
    )

    with Step("balance", meter) as step:
        nodes = list(balance.nodes_for(user))
        results = balance.balances(user, nodes, billing.Period.days(first_day, local_today))
    core_h["balance"] = report_step(step, n, len(results), "feeders and transformers")

    from django.contrib.auth.models import Group

    from accounts import roles

    viewers = []  # the operators' home (a superuser would first be asked for a second factor)
    for name, org in (("utility-op", utility), ("north-op", regions[0])):
        viewer = User.objects.create_user(name, password="pw", organisation=org)
        viewer.groups.set(Group.objects.filter(name=roles.OPERATOR))
        viewers.append(viewer)
    pages = {}
    with Step("dashboard", meter) as step:
        for who in viewers:
            client = Client(HTTP_HOST="localhost")
            client.force_login(who)
            for visit in ("first", "again"):  # the first render compiles the templates
                w0 = time.perf_counter()
                response = client.get("/")
                check(response.status_code == 200, f"dashboard: {response.status_code}")
                pages[f"{who.username} {visit}"] = round(time.perf_counter() - w0, 3)
    core_h["dashboard"] = report_step(
        step, n, 2 * len(viewers), "pages", seconds_per_page=pages, runs_per_day=0
    )

    summary(n, slots, collected, core_h, b_cpu * n / sample)


def summary(n, slots, collected, core_h, baseline_cpu) -> None:
    cpu = collected.cpu
    total = sum(cpu.values())
    lines = [
        f"  {step.name:<13}{step.wall:8.1f} s {sum(step.cpu.values()):8.1f} s  "
        + "  ".join(f"{k} {step.cpu.get(k, 0):7.1f}" for k in KINDS)
        + f"  {done.succeeded:>7,}/{done.total:,} ok"
        for _at, _job, done, step in slots
    ]
    per_meter_ms = {k: v * 1000 / n for k, v in cpu.items()}
    print(
        f"\ndaily cycle, {n:,} meters ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}):\n"
        f"  slot            wall      cpu   by process kind\n" + "\n".join(lines) + "\n"
        f"  collection    {collected.wall:8.1f} s {total:8.1f} s  "
        f"= {total * 1000 / n:.2f} ms CPU per meter-day ("
        + ", ".join(f"{k} {v:.2f}" for k, v in per_meter_ms.items())
        + f"); read-only baseline {baseline_cpu * 1000 / n:.2f} ms\n"
        f"  {n / total:.0f} meters per CPU-second\n"
        + "\n".join(
            f"  {k:<12} {v:8.3f} core-h a day at 1,000,000 meters" for k, v in core_h.items()
        )
        + f"\n  total        {sum(core_h.values()):8.2f} core-h a day at 1,000,000 meters "
        f"({sum(core_h.values()) / 24:.2f} cores around the clock)",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,000 meters")
    p.add_argument("--meters", type=int, help="meters (quick 1,000, default 10,000)")
    p.add_argument("--port-base", type=int, help="simulator ports from here (default: free)")
    p.add_argument("--alarm-passes", type=int, default=4, help="measured of the 96 a day")
    p.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    args = p.parse_args()
    n = args.meters or (1000 if args.quick else 10_000)
    if n < 200:
        sys.exit("at least 200 meters")
    from django.core.exceptions import ImproperlyConfigured

    from amisite.config import broker_url_from_env, check_shared_broker, redis_url_from_env

    try:
        check_shared_broker(broker_url_from_env(redis_url_from_env()), "bench/daily_cycle.py")
    except ImproperlyConfigured as exc:
        sys.exit(f"configuration error: {exc}")
    from bench.benchdb import drop_database, server_url, setup_django

    url = server_url()
    setup_django(url, BENCH_DB, TIME_ZONE="UTC", **TEST_ENV)
    workdir = Path(tempfile.mkdtemp(prefix="ami-daily-"))
    procs: list[subprocess.Popen] = []
    try:
        run(n, Ports(args.port_base), workdir, f"{url}/{BENCH_DB}", args.alarm_passes, procs)
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep:
            drop_database(url, BENCH_DB)
    if PROBLEMS:
        sys.exit(f"{len(PROBLEMS)} check(s) failed: " + "; ".join(PROBLEMS))
    print("# all checks passed", flush=True)


if __name__ == "__main__":
    main()
