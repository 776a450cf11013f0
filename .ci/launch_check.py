"""CI: start `make run`'s launcher as a fresh machine would and wait for a stored demo reading.

Run with the Python of a venv built from the run requirements alone (`make venv
VENV=...`), from the repository root. The launcher gets no DATABASE_URL, REDIS_URL or
secrets (the embedded default: SQLite, private Redis, generated keys), free ports and its
own var/ folder, so nothing it leaves can reach the test suite. Success: every Procfile
process (web, worker, beat, the simulators, push listener) runs, the web answers, a demo reading
is in the database; then Ctrl-C stops it and every process it started must have exited.
Failure: one line saying what did not happen, then the end of the launcher's log.

    python .ci/launch_check.py [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amisite.launcher import free_port  # noqa: E402 (the repository is on the path only now)
from amisite.proctree import (  # noqa: E402
    PROCFILE_MARKERS,
    cmdline,
    descendants,
    running_procfile,
    survivors,
    wait_until,
)

UNSET = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CHANNEL_LAYER_URL",
    "SECRET_KEY",
    "AMI_SECRETS_KEY",
    "DJANGO_SETTINGS_MODULE",
)


def say(line: str) -> None:
    print(f"[launch-check] {line}", flush=True)


class Launch:
    def __init__(self, var: Path, log: Path):
        self.var, self.log = var, log
        self.django_ready = False
        self.port = free_port()
        env = {key: value for key, value in os.environ.items() if key not in UNSET}
        env.update(
            AMI_VAR_DIR=str(var),
            AMI_PORT=str(self.port),
            AMI_SIM_PORT=str(free_port()),
            AMI_SIM_MODBUS_PORT=str(free_port()),
            AMI_SIM_IEC21_PORT=str(free_port()),
            AMI_PUSH_PORT=str(free_port()),
            AMI_REDIS_PORT=str(free_port()),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "amisite.launcher"],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def fail(self, reason: str) -> None:
        family = descendants(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        tail = self.log.read_text(errors="replace").splitlines()[-150:]
        print("\n".join(["--- launcher log (last 150 lines) ---", *tail, "---"]), flush=True)
        say(f"FAILED: {reason}")
        sys.exit(1)

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def web_answers(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/login/"
            with urllib.request.urlopen(url, timeout=2) as page:
                return page.status == 200
        except OSError:
            return False

    def readings_stored(self) -> int:
        """Register reads plus interval rows in the launcher's database (0 before migrations)."""
        secrets = self.var / "local-secrets.env"
        if not self.django_ready:
            keys = dict(
                line.partition("=")[::2]
                for line in (secrets.read_text().splitlines() if secrets.exists() else [])
            )
            if not (keys.get("SECRET_KEY") and keys.get("AMI_SECRETS_KEY")):
                return 0  # the launcher has not written them yet
            os.environ.update(keys)
            os.environ.update(AMI_VAR_DIR=str(self.var), DJANGO_SETTINGS_MODULE="amisite.settings")
            for key in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
                os.environ.pop(key, None)
            import django

            django.setup()
            self.django_ready = True
        from django.db import DatabaseError, connection

        from meters.store import RegisterRead, StoredInterval

        try:
            return RegisterRead.objects.count() + StoredInterval.objects.count()
        except DatabaseError:  # not migrated yet
            return 0
        finally:
            connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300, help="seconds to the first reading")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ami-launch-check-"))
    try:
        check(work, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(work: Path, timeout: float) -> None:
    started = time.monotonic()
    launch = Launch(work / "var", work / "launcher.log")
    say(f"launcher pid {launch.proc.pid}, web on 127.0.0.1:{launch.port}, var {work / 'var'}")

    def up_or_exited(what):
        return lambda: launch.exited() or what()

    deadline = started + timeout
    wait_until(
        up_or_exited(lambda: len(running_procfile(launch.proc.pid)) == len(PROCFILE_MARKERS)),
        timeout,
    )
    if launch.exited():
        launch.fail(f"the launcher exited with code {launch.proc.returncode} before serving")
    missing = set(PROCFILE_MARKERS) - running_procfile(launch.proc.pid)
    if missing:
        launch.fail(f"not running after {timeout:.0f} s: {', '.join(sorted(missing))}")
    if not wait_until(up_or_exited(launch.web_answers), deadline - time.monotonic()):
        launch.fail("the web process does not answer /login/")
    say(f"all processes up, web answers ({time.monotonic() - started:.0f} s)")
    if not wait_until(
        up_or_exited(launch.readings_stored), max(deadline - time.monotonic(), 0), step=2
    ):
        launch.fail(f"no demo reading stored within {timeout:.0f} s of the start")
    if launch.exited():
        launch.fail(f"the launcher exited with code {launch.proc.returncode}")
    missing = set(PROCFILE_MARKERS) - running_procfile(launch.proc.pid)
    if missing:
        launch.fail(f"died while reading the demo fleet: {', '.join(sorted(missing))}")
    say(
        f"{launch.readings_stored()} demo readings stored "
        f"({time.monotonic() - started:.0f} s after the start)"
    )

    family = descendants(launch.proc.pid) | {launch.proc.pid}
    os.killpg(launch.proc.pid, signal.SIGINT)  # Ctrl-C in the terminal of `make run`
    try:
        code = launch.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        launch.fail("the launcher did not stop within 60 s of Ctrl-C")
    left = survivors(family, 30)
    if left:
        listing = "; ".join(f"{pid}: {cmdline(pid)}" for pid in left)
        launch.fail(f"{len(left)} of {len(family)} processes outlived the stop: {listing}")
    say(f"stopped by Ctrl-C (exit code {code}); all {len(family)} processes exited")


if __name__ == "__main__":
    main()
