"""Two push listeners behind HAProxy in TCP mode (deploy/haproxy-push.cfg): one is killed,
the meters keep pushing through the balancer and every later push arrives, once.

Eight simulated meters push ciphered DLMS DataNotifications the way a meter's push setup
does: connect, send, hang up; a push whose connection fails is tried again (same event,
next invocation counter) a little later. Both listeners are real `manage.py listen_push`
processes storing into the test database (Celery eager in their process). Listener 1 is
killed with SIGKILL while the meters push. A DLMS push is not confirmed, and HAProxy closes
the meter's side cleanly whatever the listener did, so the meter cannot learn that a push
was lost. A listener reads no further from a connection until its push is handed off, so
only what the killed listener held at that instant may be lost: one read's pushes per
connection open then (read and not yet handed off, or still in its socket). Every push
sent after the kill is stored (HAProxy hands a connection that found the dead listener to
the live one), nothing is stored that was not sent or stored twice, and the survivor's
replay guard refuses nothing with pushes 0.3 s apart, and everything the listeners said
they had handed off (their health port's counters) is stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from collection.push.models import PushCounter, PushRejection
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from meters.choices import MeterStatus, Security
from meters.models import Meter
from meters.store import EventRecord
from tests.cluster.test_web_failover import HAPROXY, free_port, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
METERS = make_meters(8, first_serial=93100001)
BASE = datetime(2026, 6, 1, tzinfo=UTC)
WARM_UP = BASE - timedelta(days=1)
EVENT_CODE = 7
# Seconds between one meter's pushes (docs/operations.md, "Several push listeners").
PUSH_EVERY = 0.3
ATTEMPTS = 5  # a meter's push setup: tries per push
RETRY_DELAY = 0.2
AFTER_KILL = 6.0  # seconds the meters go on pushing after the kill


def start_listener(port: int, health: int, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "listen_push", "--host", "127.0.0.1", "--port", str(port)]
        + ["--stats-interval", "0.5", "--health-port", str(health)],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def process_env(role: str, **extra: str) -> dict:
    """The environment of a subprocess of the test: the test database, role ``role``."""
    db = connection.settings_dict
    return os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "AMI_PROCESS": role,
        "LOG_LEVEL": "INFO",
        **extra,
    }


def start_balancer(lb: int, ports: dict, checks: dict, log: Path) -> subprocess.Popen:
    """HAProxy with deploy/haproxy-push.cfg in front of listeners push1 and push2."""
    balancer = subprocess.Popen(
        [HAPROXY, "-f", str(ROOT / "deploy/haproxy-push.cfg"), "-db"],
        env=os.environ
        | {
            "AMI_PUSH_LB_BIND": f"127.0.0.1:{lb}",
            "AMI_PUSH_1": f"127.0.0.1:{ports['push1']}",
            "AMI_PUSH_2": f"127.0.0.1:{ports['push2']}",
            "AMI_PUSH_1_HEALTH_PORT": str(checks["push1"]),
            "AMI_PUSH_2_HEALTH_PORT": str(checks["push2"]),
        },
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(lambda: _open(lb), 30, "the balancer listening")
    return balancer


def accepted(log: Path, counter: str = "accepted") -> int:
    """The listener's own count of accepted pushes (or another counter), from its last stats
    line (periodic, and the one it writes when it stops)."""
    counts = re.findall(rf"'{counter}': (\d+)", log.read_text()) if log.exists() else []
    return int(counts[-1]) if counts else 0


def health(port: int) -> tuple[int, dict]:
    """A listener's health port: (HTTP status, JSON body); (0, {}) when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


def register(world) -> dict[str, Meter]:
    return {
        sim.serial: Meter.objects.create(
            serial=sim.serial,
            meter_model=world.meter_model,
            organisation=world.org_a,
            status=MeterStatus.ACTIVE,
            host="127.0.0.1",
            port=4059,
            security=Security.HIGH,
            auth_key=sim.auth_key.hex(),
            block_key=sim.block_key.hex(),
            system_title=sim.system_title.hex(),
        )
        for sim in METERS
    }


class Pushes:
    """What the meters sent: (serial, event time, first try, last try end, delivered)."""

    def __init__(self, fleet: DlmsFleet, every: float = PUSH_EVERY) -> None:
        self.fleet = fleet
        self.every = every
        self.sent: list[tuple[str, datetime, float, float, bool]] = []
        self.retried = 0

    async def meter(self, i: int, serial: str, stopping: asyncio.Event) -> None:
        seq = 0
        await asyncio.sleep(self.every * i / len(METERS))  # spread over the interval
        while not stopping.is_set():
            seq += 1
            when = BASE + timedelta(seconds=seq)
            started = time.monotonic()
            delivered = False
            for attempt in range(ATTEMPTS):
                try:
                    await self.fleet.push_alarm(
                        serial, alarm=0, ciphered=True, event_code=EVENT_CODE, when=when
                    )
                    delivered = True
                    break
                except (OSError, TimeoutError):
                    self.retried += attempt < ATTEMPTS - 1
                    await asyncio.sleep(RETRY_DELAY)
            self.sent.append((serial, when, started, time.monotonic(), delivered))
            await asyncio.sleep(self.every)


def test_a_killed_push_listener_loses_no_push_sent_after_it(world, tmp_path):
    meters = register(world)
    env = process_env("push", CELERY_TASK_ALWAYS_EAGER="1")
    ports = {"push1": free_port(), "push2": free_port()}
    checks = {name: free_port() for name in ports}
    logs = {name: tmp_path / f"{name}.log" for name in ports}
    lb = free_port()
    listeners = {name: start_listener(ports[name], checks[name], env, logs[name]) for name in ports}
    fleet = DlmsFleet(METERS, push_to=f"127.0.0.1:{lb}")
    pushes = Pushes(fleet)
    moments: dict[str, float] = {}
    balancer: subprocess.Popen | None = None

    async def scenario() -> None:
        await fleet.start()  # the meters' own port (port 0: any free one)
        # One push straight to each listener first: its first hand-off (Celery, the database)
        # is slow to set up, and the run should measure failover, not a cold start.
        for i, port in enumerate(ports.values()):
            await fleet.push_alarm(
                METERS[i].serial, alarm=0, ciphered=True, event_code=EVENT_CODE,
                destination=f"127.0.0.1:{port}", when=WARM_UP + timedelta(seconds=i),
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while EventRecord.objects.filter(ts__lt=BASE).count() < len(ports):
            assert time.monotonic() < deadline, "warm-up pushes not stored"
            await asyncio.sleep(0.2)
        stopping = asyncio.Event()
        meters_running = [
            asyncio.create_task(pushes.meter(i, sim.serial, stopping))
            for i, sim in enumerate(METERS)
        ]
        try:
            deadline = time.monotonic() + 30
            while not all(accepted(log) > 3 for log in logs.values()):  # 3 beyond the warm-up
                if (
                    time.monotonic() > deadline
                    or balancer.poll() is not None
                    or any(t.done() for t in meters_running)
                ):
                    tails = {n: log.read_text()[-800:] for n, log in logs.items()}
                    tails["haproxy"] = (tmp_path / "haproxy.log").read_text()[-800:]
                    raise AssertionError(f"both listeners never took pushes: {tails}")
                await asyncio.sleep(0.2)
            moments["before"] = accepted(logs["push1"])
            # What listener 1 has handed off by now (it can only grow until the kill).
            moments["handed"] = health(checks["push1"])[1]["stats"].get("handed_off", 0)
            os.killpg(listeners["push1"].pid, signal.SIGKILL)  # the listener's host dies
            while listeners["push1"].poll() is None:  # gone, its port closed
                await asyncio.sleep(0.01)
            moments["killed"] = time.monotonic()
            await asyncio.sleep(AFTER_KILL)
        finally:
            stopping.set()
            await asyncio.wait_for(asyncio.gather(*meters_running), 30)
            await fleet.close()

    try:
        for name, port in ports.items():
            wait_for(lambda p=port: _open(p), 60, f"{name} listening")
        # Started once both listen, so it begins with both in service.
        balancer = start_balancer(lb, ports, checks, tmp_path / "haproxy.log")
        asyncio.run(scenario())
        listeners["push1"].wait(10)
        expected = {(meters[s].pk, w) for s, w, _a, _b, ok in pushes.sent if ok}
        after_kill = {
            (meters[s].pk, w) for s, w, a, _b, ok in pushes.sent if ok and a > moments["killed"]
        }

        def stored() -> set:
            return set(EventRecord.objects.filter(ts__gte=BASE).values_list("meter_id", "ts"))

        try:
            wait_for(lambda: after_kill <= stored(), 30, "every push sent after the kill stored")
        except AssertionError:
            missing = [
                (s, w, round(a - moments["killed"], 3))
                for s, w, a, _b, ok in pushes.sent
                if ok and (meters[s].pk, w) in after_kill - stored()
            ]
            raise AssertionError(f"{len(missing)} not stored: {missing[:10]}") from None
    finally:
        for process in listeners.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    stop(process)
        if balancer is not None:
            stop(balancer)

    # Everything handed off survived the kill: listener 1's hand-offs before it (a lower
    # bound) and all of listener 2's (its stats when it stopped) are stored, a row each.
    assert EventRecord.objects.count() >= moments["handed"] + accepted(logs["push2"], "handed_off")
    rows = list(EventRecord.objects.filter(ts__gte=BASE).values_list("meter_id", "ts", "code"))
    have = {(m, ts) for m, ts, _c in rows}
    lost = [p for p in pushes.sent if p[4] and (meters[p[0]].pk, p[1]) not in have]
    assert moments["before"] > 3 and len(after_kill) >= len(METERS) * 3, (moments, after_kill)
    assert all(ok for *_x, ok in pushes.sent), "a meter gave up a push"
    assert len(rows) == len(have), "a push stored twice"
    assert have <= expected, f"stored but never sent: {sorted(have - expected)[:5]}"
    assert {c for _m, _t, c in rows} == {EVENT_CODE}
    # The survivor refused nothing (it records its rejections when it stops): no push
    # reached it out of order or twice.
    assert not PushRejection.objects.exists(), list(PushRejection.objects.values())
    # Only what the killed listener held at the kill instant may be lost, all sent before the
    # kill: one read's pushes per connection open then (it reads no further until a push is
    # handed off; a meter whose pushes come faster than they are handed off has several).
    assert all(started < moments["killed"] for _s, _w, started, _e, _ok in lost), lost
    # The replay guard followed every meter across both listeners.
    for sim in METERS:
        counter = PushCounter.objects.get(meter=meters[sim.serial])
        assert counter.last_ic == fleet.state_of(sim.serial).server_ic
    print(
        f"push1 accepted {moments['before']} before the kill; "
        f"push2 {accepted(logs['push2'])} in all"
    )
    print(
        f"{len(pushes.sent)} pushes, {len(after_kill)} sent after the kill all stored, "
        f"{len(lost)} lost in the killed listener, {pushes.retried} retried by the meters"
    )


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
