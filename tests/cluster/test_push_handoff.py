"""Push listeners that hand off before they let go: a broker outage and a SIGTERM lose nothing.

Two real `manage.py listen_push` processes behind HAProxy (deploy/haproxy-push.cfg, with the
listeners' HTTP health check), each handing its pushes to its own Redis broker (real
`redis-server` processes with an append-only file, started and stopped by the test). Eight
simulated meters push ciphered DataNotifications every 0.3 s. Then:

1. listener 1's broker stops: its health check turns 503 and HAProxy sends the meters to
   listener 2; what listener 1 had taken waits (retried) until its broker is back;
2. listener 1 is stopped with SIGTERM while the meters push: it says "draining", stops
   accepting, hands off what it took and exits 0.

Every push a meter sent is then a task in one of the two brokers, exactly once, and no push
was refused as a replay although HAProxy moved meters between listeners.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis

from collection.simulators.dlms_fleet import DlmsFleet
from tests.cluster.test_push_failover import (
    METERS,
    Pushes,
    _open,
    health,
    process_env,
    register,
    start_balancer,
)
from tests.cluster.test_web_failover import HAPROXY, free_port, stop, wait_for
from tests.services import IN_CI

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
PUSH_EVERY = 0.3

if not os.path.exists(REDIS) or not os.path.exists(HAPROXY):
    if IN_CI:
        pytest.fail("redis-server and haproxy are needed (apt-get install redis-server haproxy)")
    pytest.skip("redis-server or haproxy not installed", allow_module_level=True)


def start_redis(port: int, folder: Path) -> subprocess.Popen:
    folder.mkdir(exist_ok=True)
    return subprocess.Popen(
        [REDIS, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(folder)]
        + ["--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"],
        stdout=(folder / "redis.log").open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_listener(port: int, health: int, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "listen_push", "--host", "127.0.0.1", "--port", str(port)]
        + ["--health-port", str(health), "--drain-grace", "2.5", "--drain-timeout", "15"]
        + ["--stats-interval", "1"],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def queued_pushes(port: int) -> list[tuple[int, datetime]]:
    """(meter id, event time) of every collection.handle_push task waiting in a broker."""
    client = redis.Redis(port=port)
    out = []
    for raw in client.lrange("default", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "collection.handle_push"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        meter_id, events = args
        out += [(meter_id, datetime.fromisoformat(e["ts"])) for e in events]
    client.close()
    return out


def test_a_broker_outage_and_a_sigterm_lose_no_push(world, tmp_path):
    meters = register(world)
    brokers = {"push1": free_port(), "push2": free_port()}
    ports = {name: free_port() for name in brokers}
    checks = {name: free_port() for name in brokers}
    lb = free_port()
    redises = {name: start_redis(brokers[name], tmp_path / name) for name in brokers}
    logs = {name: tmp_path / f"{name}.log" for name in brokers}
    env = process_env("push", CELERY_TASK_ALWAYS_EAGER="0")
    listeners: dict[str, subprocess.Popen] = {}
    balancer: subprocess.Popen | None = None
    fleet = DlmsFleet(METERS, push_to=f"127.0.0.1:{lb}")
    pushes = Pushes(fleet, every=PUSH_EVERY)
    seen: dict[str, object] = {}

    async def scenario() -> None:
        await fleet.start()
        stopping = asyncio.Event()
        running = [
            asyncio.create_task(pushes.meter(i, sim.serial, stopping))
            for i, sim in enumerate(METERS)
        ]

        async def until(condition, seconds: float, what: str) -> float:
            started = time.monotonic()
            while not condition():
                assert time.monotonic() - started < seconds, f"not within {seconds} s: {what}"
                assert not any(t.done() for t in running), "a meter stopped"
                await asyncio.sleep(0.1)
            return time.monotonic() - started

        def handed(name: str) -> int:
            return health(checks[name])[1].get("stats", {}).get("handed_off", 0)

        try:
            await until(lambda: handed("push1") > 2 and handed("push2") > 2, 30, "both take")
            # 1. Listener 1's broker stops.
            redises["push1"].send_signal(signal.SIGTERM)
            redises["push1"].wait(10)
            seen["unhealthy_after"] = await until(
                lambda: health(checks["push1"])[0] == 503, 10, "listener 1 unhealthy"
            )
            seen["unhealthy_says"] = health(checks["push1"])[1]["checks"]
            await asyncio.sleep(3)  # HAProxy has taken it out; the meters go on
            redises["push1"] = start_redis(brokers["push1"], tmp_path / "push1")
            seen["healthy_after"] = await until(
                lambda: health(checks["push1"])[0] == 200, 60, "listener 1 healthy again"
            )
            await asyncio.sleep(2.5)  # back in HAProxy (rise 2)
            taken = handed("push1")
            await until(lambda: handed("push1") > taken + 2, 20, "listener 1 takes pushes again")
            # 2. Listener 1 is stopped mid-stream.
            os.killpg(listeners["push1"].pid, signal.SIGTERM)
            seen["draining_after"] = await until(
                lambda: health(checks["push1"])[1].get("checks", {}).get("listener") == "draining",
                5,
                "listener 1 says it is draining",
            )
            await until(lambda: listeners["push1"].poll() is not None, 30, "listener 1 stops")
            await asyncio.sleep(2)
        finally:
            stopping.set()
            await asyncio.wait_for(asyncio.gather(*running), 30)
            await fleet.close()

    try:
        for name in brokers:
            wait_for(lambda p=brokers[name]: _open(p), 20, f"{name}'s broker")
            own = env | {"CELERY_BROKER_URL": f"redis://127.0.0.1:{brokers[name]}/0"}
            listeners[name] = start_listener(ports[name], checks[name], own, logs[name])
        for name in brokers:
            wait_for(lambda n=name: health(checks[n])[0] == 200, 60, f"{name} healthy")
        balancer = start_balancer(lb, ports, checks, tmp_path / "haproxy.log")
        try:
            asyncio.run(scenario())
        except AssertionError as error:
            tails = {n: log.read_text()[-1500:] for n, log in logs.items()}
            raise AssertionError(f"{error}: {tails}") from None
        assert listeners["push1"].wait(5) == 0, logs["push1"].read_text()[-1500:]
        wait_for(lambda: health(checks["push2"])[1]["stats"].get("handed_off", 0) > 0, 5, "")
        # Listener 2 hands off what it took before it is stopped in turn.
        os.killpg(listeners["push2"].pid, signal.SIGTERM)
        assert listeners["push2"].wait(30) == 0, logs["push2"].read_text()[-1500:]
        queued = queued_pushes(brokers["push1"]) + queued_pushes(brokers["push2"])
    finally:
        for process in listeners.values():
            stop(process)
        for process in redises.values():
            stop(process)
        if balancer is not None:
            stop(balancer)

    sent = [(meters[s].pk, w) for s, w, _a, _b, ok in pushes.sent if ok]
    assert all(ok for *_x, ok in pushes.sent), "a meter gave up a push"
    assert len(set(queued)) == len(queued), "a push handed off twice"
    assert set(queued) == set(sent), (
        f"lost: {sorted(set(sent) - set(queued))[:5]}, "
        f"never sent: {sorted(set(queued) - set(sent))[:5]}"
    )
    says = seen["unhealthy_says"]
    assert says["broker"].startswith("unreachable"), says
    refused = "".join(log.read_text() for log in logs.values()).count("push rejected")
    assert refused == 0, "a push was refused (e.g. taken for a replay)"
    print(
        f"{len(sent)} pushes, all handed off once; listener 1 unhealthy "
        f"{seen['unhealthy_after']:.1f} s after its broker stopped, healthy again "
        f"{seen['healthy_after']:.1f} s after it restarted; {pushes.retried} meter retries"
    )
