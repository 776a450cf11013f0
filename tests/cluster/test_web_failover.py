"""Two web instances behind HAProxy (deploy/haproxy.cfg): one is killed, the other serves;
it comes back (a rolling restart) and gets traffic again.

Four clients read the API through the balancer the whole time. The instance killed with
SIGKILL can only cut the requests it was answering at that instant (at most one per client);
every request sent after that is answered 200 by the survivor (HAProxy retries refused
connections on the other instance and its readiness check takes the dead one out), and once
the instance is restarted and `/readyz` answers, it serves again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from accounts.tokens import issue_token
from tests.services import IN_CI

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CLIENTS = 4

if not os.path.exists(HAPROXY):  # .ci/run installs it: missing in CI is a failure
    if IN_CI:
        pytest.fail("haproxy (Debian package) is needed: apt-get install haproxy", pytrace=False)
    pytest.skip("haproxy not installed (apt-get install haproxy)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(port: int, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "amisite.serve"],
        cwd=ROOT,
        env=env | {"AMI_PORT": str(port)},
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, str]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Token {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, response.headers.get("X-AMI-Instance", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-AMI-Instance", "")
    except OSError:
        return 0, ""


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_a_killed_web_instance_costs_no_request_sent_after_it_and_comes_back(world, tmp_path):
    token = issue_token(world.operator_a)[1]
    db = connection.settings_dict
    env = os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "AMI_PROCESS": "web",
        "AMI_WEB_WORKERS": "1",
    }
    ports = {"web1": free_port(), "web2": free_port()}
    lb = free_port()
    webs = {name: start_web(port, env, tmp_path / f"{name}.log") for name, port in ports.items()}
    balancer = subprocess.Popen(
        [HAPROXY, "-f", str(ROOT / "deploy/haproxy.cfg"), "-db"],
        env=os.environ
        | {
            "AMI_LB_BIND": f"127.0.0.1:{lb}",
            "AMI_WEB_1": f"127.0.0.1:{ports['web1']}",
            "AMI_WEB_2": f"127.0.0.1:{ports['web2']}",
        },
        stdout=(tmp_path / "haproxy.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{lb}/api/meters/"
    results: list[tuple[float, int, str]] = []
    stopping = threading.Event()

    def client():
        while not stopping.is_set():
            sent = time.monotonic()
            status, instance = get(url, token)
            results.append((sent, status, instance))  # by the time it was sent

    try:
        for name, port in ports.items():
            wait_for(lambda p=port: get(f"http://127.0.0.1:{p}/readyz")[0] == 200, 90, name)
        seen: list = []

        def both_serve() -> bool:
            seen[:] = [get(url, token) for _ in range(6)]
            return {instance for _status, instance in seen} == {"web1", "web2"}

        try:
            wait_for(both_serve, 30, "both instances serve through the balancer")
        except AssertionError:
            log = (tmp_path / "haproxy.log").read_text()[-1500:]
            raise AssertionError(f"answers {seen}; haproxy: {log}") from None
        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        killed_at = time.monotonic()
        os.killpg(webs["web1"].pid, signal.SIGKILL)  # the instance's host dies
        webs["web1"].wait(10)
        time.sleep(5)
        restarted_at = time.monotonic()
        webs["web1"] = start_web(ports["web1"], env, tmp_path / "web1.log")
        wait_for(lambda: get(f"http://127.0.0.1:{ports['web1']}/readyz")[0] == 200, 90, "web1 back")
        back_at = time.monotonic()
        wait_for(
            lambda: any(t > back_at and i == "web1" for t, _s, i in list(results)),
            30,
            "web1 serves again",
        )
        stopping.set()
        for thread in threads:
            thread.join(15)
    finally:
        stopping.set()
        for process in (*webs.values(), balancer):
            stop(process)

    before = [r for r in results if r[0] < killed_at]
    cut = [r for r in results if r[1] != 200]
    after_kill = [r for r in results if killed_at < r[0] < restarted_at]
    assert {i for _t, s, i in before if s == 200} == {"web1", "web2"}
    assert len(cut) <= CLIENTS, f"{len(cut)} failed: {cut[:8]}"  # only those in flight at the kill
    assert all(t < killed_at for t, _s, _i in cut), cut  # sent before the kill
    assert after_kill and {i for _t, _s, i in after_kill} == {"web2"}
    assert all(s == 200 for _t, s, _i in after_kill)
    print(
        f"{len(results)} requests, {len(cut)} cut at the kill, "
        f"{len(after_kill)} served by the survivor, web1 ready {back_at - restarted_at:.1f} s "
        "after its restart"
    )
