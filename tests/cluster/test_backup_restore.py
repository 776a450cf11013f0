"""Backup and point-in-time restore of a populated system, with the project's own scripts.

A private PostgreSQL cluster (its own data directory and port, archiving its WAL) gets the
schema and a grid with meters; a base backup is taken (`tools/backup/pg_base_backup.sh`);
more meters are added, the moment T is noted, and more again. The backup is restored to T
(`tools/backup/pg_restore_pitr.sh`) into a new data directory, and the web application,
started as production starts it, serves from the restored database exactly what existed at
T: the meters added before T (with their encrypted secrets still readable), not the one added
after, and readiness says every migration is applied.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.manage_shell import manage_shell
from tests.services import IN_CI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
PG_BIN = Path(BINDIRS[-1]) if BINDIRS else None

if PG_BIN is None or not (PG_BIN / "initdb").exists():  # CI has PostgreSQL: a failure there
    if IN_CI:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are needed", pytrace=False)
    pytest.skip("PostgreSQL server binaries (initdb) not installed", allow_module_level=True)

AS_ROOT = os.geteuid() == 0


def run(*cmd, env=None, check=True) -> subprocess.CompletedProcess:
    """Run as the PostgreSQL owner when we are root (the server refuses to run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if AS_ROOT else []
    return subprocess.run(
        [*prefix, *map(str, cmd)], env=env, check=check, capture_output=True, text=True, timeout=300
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, datadir: Path, port: int):
        self.datadir, self.port = datadir, port

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/ami"

    def start(self) -> None:
        run(
            PG_BIN / "pg_ctl", "-D", self.datadir, "-l", self.datadir.parent / f"log-{self.port}",
            "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir.parent}",
            "-w", "-t", "120", "start",
        )  # fmt: skip

    def stop(self) -> None:
        run(PG_BIN / "pg_ctl", "-D", self.datadir, "-m", "fast", "-w", "stop", check=False)

    def sql(self, query: str, db: str = "ami") -> str:
        out = run(
            PG_BIN / "psql", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "-d", db,
            "-tAc", query,
        )  # fmt: skip
        return out.stdout.strip()


def django(cluster: Cluster, code: str) -> str:
    return manage_shell(code, DATABASE_URL=cluster.url)


ADD_METERS = """
from accounts.models import Organisation
from meters.models import Meter, MeterModel
org = Organisation.objects.get(code="bk")
model = MeterModel.objects.get(organisation=org)
for serial in {serials!r}:
    Meter.objects.create(serial=serial, organisation=org, meter_model=model,
                         host="127.0.0.1", port=4059, password="pw-" + serial)
"""


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="ami-pitr-"))
    if AS_ROOT:
        shutil.chown(path, "postgres", "postgres")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_restore_to_a_point_in_time_serves_exactly_what_existed_then(workdir):
    archive = workdir / "wal"
    run("mkdir", archive)
    primary = Cluster(workdir / "primary", free_port())
    run(PG_BIN / "initdb", "-D", primary.datadir, "-A", "trust", "-U", "postgres", "--no-sync")
    with open(primary.datadir / "postgresql.conf", "a") as conf:
        conf.write(
            "wal_level = replica\narchive_mode = on\n"
            f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'\n"
            "max_wal_senders = 4\nfsync = off\n"
        )
    restored = None
    primary.start()
    try:
        primary.sql("CREATE DATABASE ami", db="postgres")
        env = os.environ | {"DATABASE_URL": primary.url}
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        token = django(
            primary,
            "from accounts.models import Organisation\n"
            "from accounts.tokens import issue_token\n"
            "from tests.factories import make_grid, make_meter_model, make_user\n"
            "org = Organisation.objects.create(name='Backup', code='bk')\n"
            "make_grid(org, 'BK', make_meter_model(org), meters=3)\n"
            "print(issue_token(make_user('bk-operator', org, 'operator'))[1])\n",
        ).splitlines()[-1]

        backup_env = os.environ | {"PGHOST": "127.0.0.1", "PGPORT": str(primary.port)}
        backup_env |= {"PGUSER": "postgres", "PG_BINDIR": str(PG_BIN)}
        base = (
            run(ROOT / "tools/backup/pg_base_backup.sh", workdir / "backups", env=backup_env)
            .stdout.strip()
            .splitlines()[-1]
        )
        assert Path(base, "backup_manifest").exists()

        django(primary, ADD_METERS.format(serials=["PRE-T-1", "PRE-T-2"]))
        target = primary.sql("SELECT now()")
        time.sleep(1.1)  # commits after T carry a later timestamp
        django(primary, ADD_METERS.format(serials=["POST-T-1"]))
        primary.sql("SELECT pg_switch_wal()")
        _wait_archived(primary, archive)
        assert primary.sql("SELECT count(*) FROM meters_meter WHERE serial LIKE 'P%T-%'") == "3"
    finally:
        primary.stop()

    restored = Cluster(workdir / "restored", free_port())
    # Refuses to overwrite a data directory that holds anything.
    run("mkdir", "-p", workdir / "busy")
    run("touch", workdir / "busy" / "PG_VERSION")
    refused = run(
        ROOT / "tools/backup/pg_restore_pitr.sh", base, archive, workdir / "busy", target,
        check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "refusing" in refused.stderr
    run(ROOT / "tools/backup/pg_restore_pitr.sh", base, archive, restored.datadir, target)
    restored.start()
    try:
        _wait_promoted(restored)
        serials = restored.sql("SELECT string_agg(serial, ',' ORDER BY serial) FROM meters_meter")
        assert serials.split(",") == ["BK000001", "BK000002", "BK000003", "PRE-T-1", "PRE-T-2"]
        secret = django(
            restored,
            "from meters.models import Meter\nprint(Meter.objects.get(serial='PRE-T-2').password)",
        )
        assert secret.splitlines()[-1] == "pw-PRE-T-2"
        _serve_and_check(restored, token)
    finally:
        restored.stop()


def _serve_and_check(cluster: Cluster, token: str) -> None:
    """The web, started as production starts it, on the restored database."""
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": cluster.url,
        "AMI_PROCESS": "web",
        "AMI_PORT": str(port),
        "AMI_WEB_WORKERS": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "amisite.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(_get(f"http://127.0.0.1:{port}/readyz", server))
        assert ready["checks"]["migrations"] == "ok", ready
        listed = json.loads(
            _get(f"http://127.0.0.1:{port}/api/meters/?page_size=50", server, token=token)
        )
        rows = listed["results"] if isinstance(listed, dict) else listed
        serials = sorted(row["serial"] for row in rows)
        assert serials == ["BK000001", "BK000002", "BK000003", "PRE-T-1", "PRE-T-2"]
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def _get(url: str, server, *, token: str | None = None, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Token {token}"} if token else {}
    while True:
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read().decode()
        except OSError:
            if server.poll() is not None:
                raise AssertionError(f"web exited: {server.stderr.read()[-2000:]}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _wait_archived(cluster: Cluster, archive: Path, seconds: float = 60) -> None:
    last = cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = cluster.sql("SELECT last_archived_wal FROM pg_stat_archiver")
        if done and done >= _previous(last):
            return
        time.sleep(0.2)
    raise AssertionError(f"WAL up to {last} not archived in {seconds} s: {os.listdir(archive)}")


def _previous(walfile: str) -> str:
    """The WAL segment before `walfile` (the switch closed it; the current one is still open)."""
    timeline, log, seg = walfile[:8], int(walfile[8:16], 16), int(walfile[16:], 16)
    if seg == 0:
        log, seg = log - 1, 0xFF
    else:
        seg -= 1
    return f"{timeline}{log:08X}{seg:08X}"


def _wait_promoted(cluster: Cluster, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if cluster.sql("SELECT pg_is_in_recovery()", db="postgres") == "f":
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.3)
    raise AssertionError("the restored server did not finish recovery and promote")
