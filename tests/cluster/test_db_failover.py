"""The PostgreSQL primary's host dies during a collection run and during payments: Patroni
promotes the synchronous standby, HAProxy moves the application to it, the system goes on,
and nothing acknowledged is lost or stored twice.

The cluster (tests/cluster/pgcluster.py) is production's form on network namespaces: etcd,
two Patroni-managed PostgreSQL members in synchronous mode, HAProxy choosing the member whose
Patroni REST API answers `/primary` (deploy/patroni.yml, deploy/haproxy-postgres.cfg). The
application's processes (a Celery worker, a web instance) and this test reach it only
through HAProxy, as production's do. The schema is the test database's own, copied in.

1. A collection run (30 simulated DLMS meters, the real worker and ingest): the primary's
   host loses power after the first batch is stored. What was stored before (acknowledged:
   committed and read back) is on the new primary, the run completes, and the store holds
   every interval exactly once with the model's value.
2. The old primary comes back as a replica (pg_rewind) and becomes the synchronous standby
   (`two_members`, before each test); then payments flow through the web instance
   (`POST /api/vending/payments/` with an `Idempotency-Key`, retried with the same key
   after an error, as a payment system does) across a planned `patronictl switchover` to
   the standby (a rolling upgrade's step, docs/operations.md).
3. The same payments while the primary's host loses power. In both, every sale a client
   got a 200/201 for is on the primary that follows, with the token digits the client
   got, once; there is no other sale. (In this order one rejoin serves two tests: after a
   switchover both members are up.)

Where network namespaces cannot be made (no root, a container without CAP_SYS_ADMIN, or
AMI_CLUSTER_NETNS=0) the hosts share loopback (127.0.0.x) and say so; the tests are the same.

Each prints the time to recover (kill to promotion, to the first write through the
balancer). Timings of this machine are not assertions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from accounts.models import Organisation
from accounts.tokens import issue_token
from collection import actions
from collection.models import JobRun, MeterReadResult, ReadJob
from collection.simulators.dlms_fleet import Fault, make_meters
from meters.store import IntervalReading
from tests.cluster import pgcluster
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import (
    check_store_matches_model,
    register_fleet,
    simulated_model,
)
from tests.factories import make_world
from tests.services import IN_CI
from tests.vending.conftest import make_vending
from vending.models import Sale

# The test database is only the source of the schema (and must exist for that); the tests'
# own rows go to the cluster.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(420),  # the first test also starts the cluster; every wait is bounded
]

ROOT = Path(__file__).resolve().parents[2]
WEB_PORT = 28080
METERS = 30
PAYERS = 2

_why = pgcluster.missing()
if _why:  # .ci/run installs patroni, etcd and haproxy and runs as root: missing in CI fails
    if IN_CI:
        pytest.fail(f"the PostgreSQL failover cluster cannot run: {_why}", pytrace=False)
    pytest.skip(f"the PostgreSQL failover cluster cannot run: {_why}", allow_module_level=True)


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker):
    """The cluster, up, with the synchronous standby streaming and the schema loaded."""
    cluster = pgcluster.Cluster()
    try:
        started = time.monotonic()
        if cluster.no_netns:
            print(f"\nhosts on loopback addresses, not network namespaces: {cluster.no_netns}")
        cluster.up()
        cluster.wait(lambda: cluster.sync_standby() is not None, 90, "a synchronous standby")
        load_schema(cluster, django_db_blocker)
        print(f"\ncluster up with the schema in {time.monotonic() - started:.1f} s")
        yield cluster
    except BaseException:
        for name in cluster.processes:
            print(f"--- {name}\n{cluster.log_tail(name)}")
        raise
    finally:
        closing = time.monotonic()
        cluster.close()
        print(f"cluster torn down in {time.monotonic() - closing:.1f} s")


def load_schema(cluster: pgcluster.Cluster, django_db_blocker) -> None:
    """The test database's schema and rows (migrated; between tests nothing else) into the
    cluster's `ami`: a minute of `migrate` saved, the same schema."""
    with django_db_blocker.unblock():
        test_db = connections["default"].settings_dict
    created = cluster.psql("CREATE DATABASE ami", db="postgres")
    assert created.returncode == 0, created.stderr
    source = [
        pgcluster.PG_BIN / "pg_dump", "-Fc", "--no-owner", "-h", test_db["HOST"] or "127.0.0.1",
        "-p", str(test_db["PORT"] or 5432), "-U", test_db["USER"] or "postgres", test_db["NAME"],
    ]  # fmt: skip
    target = [
        pgcluster.PG_BIN / "pg_restore", "--no-owner", "--single-transaction", "--exit-on-error",
        "-h", cluster.socket_dir, "-p", str(pgcluster.PG_PORT), "-U", "postgres", "-d", "ami",
    ]  # fmt: skip
    dump = subprocess.run(source, capture_output=True, timeout=120)
    assert dump.returncode == 0, dump.stderr.decode()[-2000:]
    restore = subprocess.run(target, input=dump.stdout, capture_output=True, timeout=120)
    assert restore.returncode == 0, restore.stderr.decode()[-2000:]


@pytest.fixture
def two_members(cluster):
    """Both members up, one of them the synchronous standby: a host killed by an earlier
    test is powered on and comes back as a replica (Patroni runs pg_rewind on it)."""
    dead = sorted(cluster.down)
    for member in dead:
        cluster.power_on(member)
    took = cluster.wait(
        lambda: cluster.leader() is not None and cluster.sync_standby() is not None,
        120, "a leader and a synchronous standby",
    )  # fmt: skip
    if dead:
        print(f"\n{', '.join(dead)} back as the synchronous standby {took:.1f} s after power-on")
    return cluster


@contextmanager
def on_cluster(cluster: pgcluster.Cluster, django_db_blocker):
    """Inside, this process's ORM works on the cluster (through the balancer, like the
    application's processes), not on the test database."""
    connection = connections["default"]
    saved = connection.settings_dict
    connection.close()
    connection.settings_dict = saved | {
        "NAME": "ami", "USER": "postgres", "PASSWORD": "",
        "HOST": str(cluster.socket_dir), "PORT": str(pgcluster.PG_PORT),
    }  # fmt: skip
    try:
        with django_db_blocker.unblock():
            yield
    finally:
        connection.close()
        connection.settings_dict = saved


@pytest.fixture
def orm(cluster, django_db_blocker):
    return lambda: on_cluster(cluster, django_db_blocker)


def retrying(read, seconds: float = 90):
    """`read()` through the balancer, again after a cut connection (a failover under way)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return read()
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            close_old_connections()
            connections["default"].close()
            time.sleep(0.3)


def app_env(cluster: pgcluster.Cluster, **extra: str) -> dict:
    env = os.environ | {"DATABASE_URL": cluster.url, "PYTHONPATH": str(ROOT)} | extra
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def start_app(cmd: list, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop_app(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


class Recovery:
    """Kill the primary's host; time the promotion and the first write through the balancer."""

    def __init__(self, cluster: pgcluster.Cluster):
        self.cluster = cluster
        self.old = cluster.leader()
        assert self.old, "no leader to kill"

    def kill_primary(self) -> None:
        self.killed_at = time.monotonic()
        self.cluster.cut_power(self.old)

    def wait_promoted(self) -> str:
        cluster = self.cluster
        self.promoted = cluster.wait(
            lambda: cluster.leader() not in (None, self.old), 60, "a replica promoted"
        )
        writes = lambda: cluster.psql("SELECT NOT pg_is_in_recovery()", timeout=3).stdout.strip()  # noqa: E731
        self.writable = self.promoted + cluster.wait(lambda: writes() == "t", 30, "writes")
        return cluster.leader()

    def __str__(self) -> str:
        return (
            f"{self.old} killed; a replica promoted after {self.promoted:.1f} s, writes through "
            f"the balancer after {self.writable:.1f} s (ttl {pgcluster.TTL} s, loop_wait "
            f"{pgcluster.LOOP_WAIT} s)"
        )


def test_the_primary_dies_during_a_collection_run(two_members, orm, tmp_path):
    cluster = two_members
    from amisite.celery import app

    app.control.purge()
    sims = make_meters(METERS)
    for s in sims:
        s.fault = Fault("late", delay_s=0.15)  # the run lasts long enough to be cut
    with fleet_thread(sims, interface="wrapper") as fleet:
        with orm():
            org = Organisation.objects.create(name="Failover", code="failover")
            meters = register_fleet(fleet, sims, org, simulated_model(org))
            job = ReadJob.objects.create(
                name="failover", organisation=org, items=["clock", "registers", "profile"],
                batch_size=10, concurrency=10, retries=0,
            )  # fmt: skip
        env = app_env(cluster, AMI_PROCESS="worker")
        worker = start_app(
            [sys.executable, "-m", "celery", "-A", "amisite", "worker", "-Q", "collect,default",
             "--concurrency", "1", "-n", "failover@%h", "--loglevel", "WARNING",
             "--without-mingle", "--without-gossip"],
            env, tmp_path / "worker.log",
        )  # fmt: skip
        recovery = Recovery(cluster)
        try:
            with orm():
                run = actions.start_run(job)
                cluster.wait(
                    lambda: MeterReadResult.objects.filter(run=run, status="ok").exists(),
                    120, "the first batch stored",
                )  # fmt: skip
                acknowledged = set(
                    IntervalReading.objects.filter(meter__in=meters).values_list(
                        "meter_id", "group", "ts"
                    )
                )
                ok_before = set(
                    MeterReadResult.objects.filter(run=run, status="ok").values_list(
                        "meter_id", flat=True
                    )
                )
            recovery.kill_primary()  # the other batches are being read or ingested now
            new = recovery.wait_promoted()
            with orm():
                cluster.wait(
                    lambda: retrying(lambda: JobRun.objects.get(pk=run.pk).status) != "running",
                    180, "the run to finish", every=0.5,
                )  # fmt: skip
                run = retrying(lambda: JobRun.objects.get(pk=run.pk))
                stored = set(
                    IntervalReading.objects.filter(meter__in=meters).values_list(
                        "meter_id", "group", "ts"
                    )
                )
                assert acknowledged and acknowledged <= stored, "acknowledged readings lost"
                assert ok_before <= set(
                    MeterReadResult.objects.filter(run=run, status="ok").values_list(
                        "meter_id", flat=True
                    )
                )
                assert (run.status, run.done, run.succeeded) == (
                    "succeeded", METERS, METERS
                ), run.error  # fmt: skip
                # Every interval of every meter, each once, each the model's value.
                assert check_store_matches_model(meters, run) == METERS * 96 * 4
                window = IntervalReading.objects.filter(
                    meter__in=meters, ts__gt=run.since, ts__lte=run.until
                )
                assert window.count() == METERS * 96
        finally:
            stop_app(worker)
    print(
        f"\ncollection: {recovery}; {len(acknowledged)} rows stored before the kill, "
        f"{len(stored)} after the run, on {new}"
    )


def pay(url: str, token: str, key: str, meter_number: str) -> tuple[int, dict]:
    body = (
        f'{{"meter_number": "{meter_number}", "amount": "100.00", "currency": "ZAR", '
        f'"payment_reference": "{key}"}}'
    ).encode()
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Authorization": f"Token {token}", "Idempotency-Key": key,
                 "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:
        return 0, {}


@pytest.fixture(scope="module")
def seller(cluster, django_db_blocker):
    """A payment system's token and two prepaid meters, made once on the cluster."""
    with on_cluster(cluster, django_db_blocker):
        vend = make_vending(make_world())
        return issue_token(vend.integration_a)[1], [
            vend.account_a.meter_number,
            vend.account_a2.meter_number,
        ]


def test_a_planned_switchover_during_payments(two_members, orm, seller, tmp_path):
    """Step 3 of a rolling upgrade (docs/operations.md): the leader hands over to the
    synchronous standby with `patronictl switchover`, under the same payments."""
    payments_across(two_members, orm, seller, tmp_path, Switchover(two_members), "so")


def test_the_primary_dies_during_payments(two_members, orm, seller, tmp_path):
    recovery = Recovery(two_members)
    payments_across(two_members, orm, seller, tmp_path, recovery, "fo")


class Switchover(Recovery):
    def kill_primary(self) -> None:
        self.killed_at = time.monotonic()
        self.candidate = self.cluster.sync_standby()
        done = self.cluster.switchover(self.old, self.candidate)
        assert done.returncode == 0, done.stdout + done.stderr

    def __str__(self) -> str:
        return (
            f"switchover {self.old} -> {self.candidate}: the new leader after "
            f"{self.promoted:.1f} s, writes through the balancer after {self.writable:.1f} s"
        )


def payments_across(cluster, orm, seller, tmp_path, event: Recovery, prefix: str) -> None:
    """Payments flow through a web instance while `event` happens; then every acknowledged
    sale (and no other with this prefix) is on the primary, once, with its digits."""
    token, numbers = seller
    web = start_app(
        [sys.executable, "-m", "amisite.serve"],
        app_env(cluster, AMI_PROCESS="web", AMI_WEB_WORKERS="1", AMI_PORT=str(WEB_PORT)),
        tmp_path / "web.log",
    )
    url = f"http://127.0.0.1:{WEB_PORT}/api/vending/payments/"
    acked: dict[str, tuple[float, int, str]] = {}  # key -> (when, status, token digits)
    failures: list[tuple[float, int]] = []  # (when, status) of answers that were not a sale
    stopping = threading.Event()

    def payer(n: int) -> None:
        sent = 0
        while not stopping.is_set():
            key = f"{prefix}-{n}-{sent}"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:  # the same key until it is answered
                status, body = pay(url, token, key, numbers[n])
                if status in (200, 201):
                    acked[key] = (time.monotonic(), status, body["token"]["digits"])
                    break
                failures.append((time.monotonic(), status))
                time.sleep(0.2)
            else:
                return  # never answered: the assertions below see the key missing
            sent += 1

    threads = [threading.Thread(target=payer, args=(n,), daemon=True) for n in range(PAYERS)]
    try:
        ready = lambda: urllib.request.urlopen(f"http://127.0.0.1:{WEB_PORT}/readyz", timeout=3)  # noqa: E731
        cluster.wait(lambda: _answers(ready), 120, "the web instance ready")
        for thread in threads:
            thread.start()
        cluster.wait(lambda: len(acked) >= 10, 60, "payments flowing")
        event.kill_primary()
        new = event.wait_promoted()
        back = event.killed_at + event.writable
        cluster.wait(
            lambda: sum(t > back for t, _s, _d in list(acked.values())) >= 5,
            60, "payments after the new primary took writes",
        )  # fmt: skip
        stopping.set()
        for thread in threads:
            thread.join(30)
    finally:
        stopping.set()
        stop_app(web)
    before = [k for k, (t, _s, _d) in acked.items() if t < event.killed_at]
    after = [k for k, (t, _s, _d) in acked.items() if t >= event.killed_at]
    times = sorted(t for t, _s, _d in acked.values())
    stopped = max(later - earlier for earlier, later in pairwise(times))
    with orm():
        sales = {
            s.idempotency_key: s
            for s in retrying(
                lambda: list(
                    Sale.objects.filter(idempotency_key__startswith=f"{prefix}-").prefetch_related(
                        "tokens"
                    )
                )
            )
        }
        assert set(sales) == set(acked), (
            f"lost: {sorted(set(acked) - set(sales))}, never acknowledged: "
            f"{sorted(set(sales) - set(acked))}"
        )
        for key, (_t, _status, digits) in acked.items():
            assert [t.digits for t in sales[key].tokens.all()] == [digits], key
        assert sum(s.amount_paid for s in sales.values()) == Decimal("100.00") * len(acked)
    replayed = sum(1 for _t, status, _d in acked.values() if status == 200)
    # What a client got while there was no primary (0: no answer, the connection cut).
    answers = Counter(status for t, status in failures if t >= event.killed_at)
    print(
        f"\npayments: {event}; {len(before)} sales acknowledged before, {len(after)} after, "
        f"{sum(answers.values())} refused or cut in between "
        f"({dict(sorted(answers.items()))} by status; {replayed} "
        f"answered on a retry as already recorded); no sale for {stopped:.1f} s; on {new}"
    )


def _answers(open_url) -> bool:
    try:
        with open_url() as response:
            return response.status == 200
    except OSError:
        return False
