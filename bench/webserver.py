"""The web process for the benchmarks: `python -m amisite.serve`, as `make run` and production
start it (uvicorn workers, DEBUG off), on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amisite import proctree  # noqa: E402


def start(**env: str) -> tuple[subprocess.Popen, int]:
    """Start it with this environment on top of ours; return (process, port) once it listens.

    The port is a free one, or `BENCH_WEB_PORT` when set (a shared machine's allotted range)."""
    port = int(os.environ.get("BENCH_WEB_PORT", "0"))
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    full = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    full.update({"DEBUG": "false", "AMI_HOST": "127.0.0.1", "AMI_PORT": str(port), **env})
    proc = subprocess.Popen([sys.executable, "-m", "amisite.serve"], cwd=ROOT, env=full)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the web process exited") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the web process did not start")


def stop(proc: subprocess.Popen) -> None:
    """Stop it and its uvicorn workers: a worker still closing websockets when the master was
    killed lived on, holding its pooled connections into the next run's figures."""
    workers = proctree.descendants(proc.pid)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:  # open websockets delay a graceful exit
        proc.kill()
        proc.wait(5)
    for pid in workers:
        if proctree.alive(pid) and _ours(pid):
            os.kill(pid, signal.SIGKILL)


def _ours(pid: int) -> bool:
    """Still a process of our interpreter (not a number the system has reused since)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().split(b"\0")[0] == sys.executable.encode()
    except OSError:
        return False
