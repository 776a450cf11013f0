"""A region's worker takes only its region's queue (AMI_WORKER_QUEUES, docs/operations.md,
"Worker queues"): two real Celery workers on the real Redis broker, each started with its
region's queue as a host's Procfile would, one read run over meters of both regions.

Which worker ran which batch comes from Celery's own task events (workers started with -E;
the test listens on the broker like Flower would): every batch ran on its region's worker
and no other, every meter was read once, and nothing was left in either queue.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from amisite import observability
from amisite.celery import app
from collection import actions, queues
from collection.models import JobRun, MeterReadResult, ReadJob
from collection.simulators.dlms_fleet import SimulatedMeter
from meters.models import MeterEndpoint
from tests.cluster.test_push_failover import process_env
from tests.cluster.test_web_failover import stop, wait_for
from tests.collection.fleet import fleet_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
READ_BATCH = "collection.read_batch"


class TaskEvents:
    """Celery task events from the broker, on a thread: which worker received and ran what."""

    def __init__(self) -> None:
        self.received: dict[str, tuple[str, tuple]] = {}  # task id -> (worker, args)
        self.succeeded: dict[str, str] = {}  # task id -> worker
        self.workers: set[str] = set()
        self._receiver = None
        self._thread = threading.Thread(target=self._run, name="task-events", daemon=True)

    def _on_event(self, event: dict) -> None:
        host = event.get("hostname", "")
        self.workers.add(host)
        if event["type"] == "task-received" and event.get("name") == READ_BATCH:
            self.received[event["uuid"]] = (host, ast.literal_eval(event["args"]))
        elif event["type"] == "task-succeeded":
            self.succeeded[event["uuid"]] = host

    def _run(self) -> None:
        with app.connection() as conn:
            self._receiver = app.events.Receiver(conn, handlers={"*": self._on_event})
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(10)


def start_worker(name: str, queue: str, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "amisite", "worker", "-Q", queue]
        + ["-n", f"{name}@h18p", "-P", "solo", "-E", "--without-gossip", "--without-mingle"]
        + ["--loglevel", "INFO"],
        cwd=ROOT,
        env=env | {"AMI_WORKER_QUEUES": queue},
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_each_region_worker_reads_only_its_regions_batches(world, settings, tmp_path):
    settings.AMI_COLLECT_ROUTE_BY = "region"
    tag = f"{os.getpid()}-{int(time.time()) % 100000}"  # queues no earlier run left behind
    grids = {"north": world.grid_a, "south": world.grid_b}
    for name, grid in grids.items():
        grid.region.code = f"{name}-{tag}"
        grid.region.save()
    region_queue = {name: queues.queue_name(grid.region.code) for name, grid in grids.items()}
    assert set(region_queue.values()) <= set(queues.fleet_queues())
    meters = {m.pk: name for name, grid in grids.items() for m in grid.meters}
    env = process_env("worker", AMI_COLLECT_ROUTE_BY="region", CELERY_TASK_ALWAYS_EAGER="0")
    logs = {name: tmp_path / f"{name}.log" for name in grids}
    events = TaskEvents()
    workers: dict[str, subprocess.Popen] = {}
    sims = [SimulatedMeter(serial=m.serial) for grid in grids.values() for m in grid.meters]
    with fleet_thread(sims, per_meter_ports=True) as fleet:
        for grid in grids.values():
            for meter in grid.meters:
                address = fleet.address_of(meter.serial)
                MeterEndpoint.objects.filter(meter=meter).update(
                    host=address.host, port=address.port, timeout_s=5, retries=0
                )
        events.start()
        try:
            for name in grids:
                workers[name] = start_worker(name, region_queue[name], env, logs[name])
            hosts = {name: f"{name}@h18p" for name in grids}
            try:
                wait_for(lambda: set(hosts.values()) <= events.workers, 60, "both workers online")
            except AssertionError:
                raise AssertionError({n: log.read_text()[-1500:] for n, log in logs.items()})
            job = ReadJob.objects.create(
                name="both regions", organisation=world.utility, items=["registers"], batch_size=1
            )
            run = actions.start_run(job)
            wait_for(
                lambda: JobRun.objects.get(pk=run.pk).status not in ("queued", "running"),
                90,
                "the run finished",
            )
            wait_for(lambda: set(events.received) <= set(events.succeeded), 10, "events")
        finally:
            for process in workers.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in workers.values():
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    stop(process)
            events.stop()

    batches = [(host, args) for host, args in events.received.values()]
    assert len(batches) == len(meters), batches  # batch_size 1: a batch per meter
    read = []
    for host, (run_id, meter_ids) in batches:
        assert run_id == run.pk
        for pk in meter_ids:
            assert host == f"{meters[pk]}@h18p", f"meter {pk} of {meters[pk]} read by {host}"
            read.append(pk)
    assert sorted(read) == sorted(meters), "a meter read twice or never"
    assert {events.succeeded[task] for task in events.received} == {"north@h18p", "south@h18p"}
    results = dict(MeterReadResult.objects.filter(run=run).values_list("meter_id", "status"))
    assert results == dict.fromkeys(meters, "ok"), results
    depth = observability._queue_depths()  # a queue emptied is gone from Redis: 0
    for queue in region_queue.values():  # nothing left undone, nothing waiting
        assert depth.get(queue, 0) == 0, depth
    print(
        f"{len(batches)} batches: "
        + ", ".join(
            f"{h} ran {sum(1 for x, _ in batches if x == h)}" for h in sorted(hosts.values())
        )
    )
