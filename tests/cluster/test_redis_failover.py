"""The Redis master dies; Sentinel promotes the replica; Celery and the channel layer go on.

Two private Redis servers (a master and its replica), one Sentinel watching them and HAProxy
(deploy/haproxy-redis.cfg) routing REDIS_URL to whichever says `role:master`. A real Celery
worker of the project takes its tasks through the balancer; the test's channel layer (the
project's backend) joined a group through it. The master gets SIGKILL: once Sentinel has
promoted the replica, a task sent through the same URL is run by the same worker (it
reconnected by itself) and a group message sent through the same layer object reaches the
channel that joined before the failover (the membership was replicated).

On loopback with private ports (28600-28699), not network namespaces: the project's
REDIS_URL must be a redis:// address, and the machine's namespace has no route into the
test's namespaces (tests/cluster/pgcluster.py reaches its balancer over a unix socket).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from collection.health import HEARTBEAT_KEY
from tests.services import IN_CI

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PORTS = {"redis1": 28601, "redis2": 28602, "sentinel": 28611, "lb": 28620}

for _program in (REDIS, HAPROXY):
    if not os.path.exists(_program):  # CI has both (.ci/run): missing there is a failure
        if IN_CI:
            pytest.fail(f"{_program} is needed (apt-get install redis-server haproxy)")
        pytest.skip(f"{_program} not installed", allow_module_level=True)


def wait(condition, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)


def master_port(port: int) -> int | None:
    """The port of the Redis server that answers on `port` (through the balancer: the
    master), or None when nothing answers."""
    try:
        return int(client(port).info("server")["tcp_port"])
    except (redis.RedisError, OSError):
        return None


class Servers:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ami-redis-failover-"))
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list, env: dict | None = None) -> None:
        self.processes[name] = subprocess.Popen(
            list(map(str, cmd)), env=env, start_new_session=True,
            stdout=(self.dir / f"{name}.log").open("a"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def redis(self, name: str, *extra: str) -> None:
        self.start(name, [
            REDIS, "--bind", "127.0.0.1", "--port", PORTS[name], "--save", "",
            "--appendonly", "no", "--dir", self.dir, *extra,
        ])  # fmt: skip

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def close(self) -> None:
        for name in self.processes:
            self.kill(name)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self, name: str) -> str:
        return (self.dir / f"{name}.log").read_text(errors="replace")[-1500:]


def test_celery_and_channels_go_on_after_sentinel_promotes_the_replica(tmp_path):
    servers = Servers()
    url = f"redis://127.0.0.1:{PORTS['lb']}/0"
    worker = None
    try:
        servers.redis("redis1")
        servers.redis("redis2", "--replicaof", "127.0.0.1", str(PORTS["redis1"]))
        (servers.dir / "sentinel.conf").write_text(
            f"bind 127.0.0.1\nport {PORTS['sentinel']}\ndir {servers.dir}\n"
            f"sentinel monitor ami 127.0.0.1 {PORTS['redis1']} 1\n"
            "sentinel down-after-milliseconds ami 1000\n"
            "sentinel failover-timeout ami 10000\n"
        )
        servers.start("sentinel", [REDIS, servers.dir / "sentinel.conf", "--sentinel"])
        servers.start(
            "haproxy", [HAPROXY, "-f", ROOT / "deploy/haproxy-redis.cfg", "-db"],
            env=os.environ | {
                "AMI_REDIS_BIND": f"127.0.0.1:{PORTS['lb']}",
                "AMI_REDIS_1": f"127.0.0.1:{PORTS['redis1']}",
                "AMI_REDIS_2": f"127.0.0.1:{PORTS['redis2']}",
            },
        )  # fmt: skip
        wait(lambda: master_port(PORTS["lb"]) == PORTS["redis1"], 30, "the balancer on redis1")
        wait(
            lambda: client(PORTS["redis2"]).info("replication").get("master_link_status") == "up",
            30, "redis2 replicating",
        )  # fmt: skip

        env = os.environ | {"REDIS_URL": url, "AMI_PROCESS": "worker", "PYTHONPATH": str(ROOT)}
        env.pop("CELERY_BROKER_URL", None)
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "amisite", "worker", "-Q", "default",
             "--concurrency", "1", "-n", "redis-failover@%h", "--loglevel", "WARNING",
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, start_new_session=True,
            stdout=(tmp_path / "worker.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        times = asyncio.run(across_a_failover(servers, url))
        assert worker.poll() is None, "the worker died instead of reconnecting"
    except BaseException:
        for name in servers.processes:
            print(f"--- {name}\n{servers.log(name)}")
        if (tmp_path / "worker.log").exists():
            print(f"--- worker\n{(tmp_path / 'worker.log').read_text()[-3000:]}")
        raise
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        servers.close()
    print(
        f"\nredis: master killed; Sentinel promoted the replica after {times['promoted']:.1f} s, "
        f"the balancer on it after {times['routed']:.1f} s, a task run by the reconnected "
        f"worker after {times['task']:.1f} s, a group message delivered after "
        f"{times['channels']:.1f} s"
    )


def heartbeat_runs(url: str, seconds: float) -> None:
    """Send the project's heartbeat task through `url`; wait until the worker has run it
    (it stamps the cache, which is on the same Redis)."""
    from amisite.celery import app

    lb = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    key = f":1:{HEARTBEAT_KEY}"
    deadline = time.monotonic() + seconds
    sent_at = None
    while time.monotonic() < deadline:
        try:
            if sent_at is None:
                lb.delete(key)
                with app.connection_for_write(url) as connection:
                    app.send_task("collection.heartbeat", queue="default", connection=connection)
                sent_at = time.monotonic()
            if lb.get(key):
                return
        except (redis.RedisError, OSError):
            sent_at = None  # the balancer was between masters: send again
        time.sleep(0.2)
    raise AssertionError(f"the heartbeat task did not run within {seconds} s")


async def group_message_arrives(layer, channel: str, n: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await layer.group_send("failover", {"type": "probe", "n": n})
            message = await asyncio.wait_for(layer.receive(channel), 3)
            if message["n"] == n:
                return
        except (TimeoutError, redis.RedisError, OSError):
            await asyncio.sleep(0.2)
    raise AssertionError(f"group message {n} not delivered within {seconds} s")


async def across_a_failover(servers: Servers, url: str) -> dict:
    layer = RedisChannelLayer(hosts=[{"address": url, "socket_timeout": 10}], prefix="failover")
    channel = await layer.new_channel()
    await layer.group_add("failover", channel)
    await group_message_arrives(layer, channel, 1, 20)
    heartbeat_runs(url, 60)  # the worker is up and takes tasks through the balancer
    redis2 = client(PORTS["redis2"])
    # The group membership is on the replica before the master dies.
    wait(lag_is_zero, 10, "the replica caught up")
    # Sentinel learns of replicas from the master's INFO, polled every 10 s: a master killed
    # before that leaves it nothing to promote (-failover-abort-no-good-slave).
    wait(sentinel_knows_the_replica, 30, "Sentinel knows the replica")

    killed = time.monotonic()
    servers.kill("redis1")
    promoted = wait(lambda: redis2.info("replication")["role"] == "master", 60, "promotion")
    routed = wait(lambda: master_port(PORTS["lb"]) == PORTS["redis2"], 30, "the balancer")
    heartbeat_runs(url, 90)
    task = time.monotonic() - killed
    await group_message_arrives(layer, channel, 2, 60)
    return {
        "promoted": promoted,
        "routed": promoted + routed,
        "task": task,
        "channels": time.monotonic() - killed,
    }


def sentinel_knows_the_replica() -> bool:
    replicas = client(PORTS["sentinel"]).sentinel_slaves("ami")
    return any(
        r["port"] == PORTS["redis2"] and r["is_slave"] and not r["is_disconnected"]
        for r in replicas
    )


def lag_is_zero() -> bool:
    master = client(PORTS["redis1"]).info("replication")
    replica = client(PORTS["redis2"]).info("replication")
    return master.get("master_repl_offset") == replica.get("slave_repl_offset")
