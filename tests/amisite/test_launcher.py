"""make run's launcher: serves the login page, restarts on the same data, leaves nothing behind."""

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from amisite.launcher import free_port
from amisite.proctree import PROCFILE_MARKERS, descendants, running_procfile, survivors, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def start(tmp_path, port, sim_port, log):
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
    return subprocess.Popen(  # output to a file: a full pipe would stall the launcher
        [sys.executable, "-m", "amisite.launcher"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_login(port, proc, log, seconds=120) -> str:
    page = {}

    def served():
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as answer:
                page["text"] = answer.read().decode()
                return True
        except OSError:
            return False

    assert wait_until(served, seconds, step=0.5), "the login page did not come up"
    return page["text"]


def test_run_serves_login_survives_restart_and_kill_leaves_nothing(tmp_path):
    port, sim_port = free_port(), free_port()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start(tmp_path, port, sim_port, first_log)
    try:
        assert "Sign in" in wait_for_login(port, first, first_log)
        assert wait_until(lambda: running_procfile(first.pid) == set(PROCFILE_MARKERS), 60), (
            f"running: {running_procfile(first.pid)}"
        )
        family = descendants(first.pid)
    finally:
        first.send_signal(signal.SIGKILL)  # the supervisor dies without cleaning up
        first.wait()
    assert not survivors(family, 20), "processes outlived the supervisor"
    output = first_log.read_text()
    assert "demo loaded" in output and "north-operator" in output

    second = start(tmp_path, port, sim_port, second_log)  # the same data, started again
    try:
        assert "Sign in" in wait_for_login(port, second, second_log)
    finally:
        second.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        assert second.wait(timeout=30) is not None
    assert "already has data" in second_log.read_text()
