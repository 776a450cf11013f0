"""make run's launcher: serves the login page, restarts on the same data, leaves nothing behind."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """All processes below pid, from /proc (children of children too)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def start(tmp_path, port, sim_port):
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "AMI_SECRETS_KEY",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        )
    }
    env.update(AMI_VAR_DIR=str(tmp_path), AMI_PORT=str(port), AMI_SIM_PORT=str(sim_port))
    return subprocess.Popen(
        [sys.executable, "-m", "amisite.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_login(port, proc, seconds=120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as page:
                return page.read().decode()
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the login page did not come up")


def test_run_serves_login_survives_restart_and_kill_leaves_nothing(tmp_path):
    port, sim_port = free_port(), free_port()
    first = start(tmp_path, port, sim_port)
    try:
        assert "Sign in" in wait_for_login(port, first)
        time.sleep(2)  # let every process of the Procfile start
        family = descendants(first.pid)
        assert len(family) >= 5  # honcho, web, worker, beat, simulator, redis (+ pool)
    finally:
        first.send_signal(signal.SIGKILL)  # the supervisor dies without cleaning up
        first.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in family if alive(pid)], "processes outlived the supervisor"
    output = first.stdout.read()
    assert "demo loaded" in output and "north-operator" in output

    second = start(tmp_path, port, sim_port)  # the same data, started again
    try:
        assert "Sign in" in wait_for_login(port, second)
    finally:
        second.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        assert second.wait(timeout=30) is not None
    assert "already has data" in second.stdout.read()
