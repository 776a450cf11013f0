"""A private PostgreSQL cluster as production runs it, with network namespaces for hosts.

    dcs  etcd (one member)                                  10.18.0.2
    lb   HAProxy (deploy/haproxy-postgres.cfg), routing to  10.18.0.3
         the member whose Patroni REST API says `/primary`
    db1  Patroni (deploy/patroni.yml) + PostgreSQL          10.18.0.11
    db2  Patroni (deploy/patroni.yml) + PostgreSQL          10.18.0.12

Each host is a network namespace of its own, joined to the others by a bridge that lives in
a further namespace (`sw`): the test's traffic stays between namespaces it created, and no
interface or address is added to the machine's own namespace. The application (the test
process, web instances, Celery workers) stays on the machine and reaches the balancer through
a unix socket (`Cluster.socket_dir`), as a database client reaches a local pooler: a file,
not a network, so nothing routes from the machine into the test network. Every port is in
28000-28999, inside the namespaces; the machine's PostgreSQL on 5432 is never touched.

Where namespaces cannot be made (`why_no_namespaces`: not root, a container without the
capability, or AMI_CLUSTER_NETNS=0) the same hosts run on loopback addresses 127.0.0.x with
the same ports, and a power cut is SIGKILL to the host's processes alone.

A host "dies" as a power cut: its link on the bridge goes down (no FIN or RST reaches
anyone), then every process in its namespace gets SIGKILL. Everything is torn down in
`close()`; namespaces left by a test process that was itself killed are swept at the next
start (their names carry the owning process id).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "amitest-"
SUBNET = "10.18.0"
HOSTS = {"dcs": 2, "lb": 3, "db1": 11, "db2": 12}
MEMBERS = ("db1", "db2")
PG_PORT, API_PORT, ETCD_PORT, ETCD_PEER_PORT = 28432, 28008, 28379, 28380
# Patroni's timings for the test: a dead primary is replaced within about ttl + loop_wait.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 10, 1, 3

PATRONI = shutil.which("patroni") or "/usr/bin/patroni"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
_BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
PG_BIN = Path(_BINDIRS[-1]) if _BINDIRS else None
# Processes in the namespaces get a plain environment: Patroni is Debian's, on the system
# Python, and must not see the test's virtualenv.
PLAIN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def missing() -> str | None:
    """Why the cluster cannot run here, or None."""
    for program in (PATRONI, ETCD, HAPROXY):
        if not os.path.exists(program):
            return f"{program} not installed (apt-get install patroni etcd-server haproxy)"
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        return "PostgreSQL server binaries (initdb) not installed"
    return None


def why_no_namespaces() -> str | None:
    """Why hosts cannot be network namespaces here (then they share loopback), or None.
    AMI_CLUSTER_NETNS=0 asks for loopback (to try that form where namespaces work)."""
    if os.environ.get("AMI_CLUSTER_NETNS", "1") == "0":
        return "AMI_CLUSTER_NETNS=0"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    if not shutil.which("ip", path=PLAIN_ENV["PATH"]):
        return "iproute2 (ip) not installed"
    probe = f"{PREFIX}probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if made.returncode:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    return None


def sh(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `cmd`; unchecked, a command past `timeout` (a probe through the balancer while no
    member takes connections) is an answer like a failure (status 124), not an exception."""
    try:
        done = subprocess.run(
            list(map(str, cmd)), capture_output=True, text=True, timeout=timeout, env=PLAIN_ENV
        )
    except subprocess.TimeoutExpired:
        if check:
            raise
        return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {timeout} s")
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {done.stderr.strip()[-2000:]}")
    return done


def _pids_in(namespace: str) -> list[int]:
    """The live processes in `namespace` (a zombie waiting for its parent is not)."""
    out = sh("ip", "netns", "pids", namespace, check=False).stdout.split()
    pids = []
    for pid in filter(str.isdigit, out):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            pids.append(int(pid))
    return pids


def _kill_namespace(namespace: str) -> None:
    """SIGKILL every process in `namespace` (bounded: new ones cannot appear once the
    starters are dead, but a fork in flight gets a few more rounds), then delete it."""
    for _ in range(20):
        pids = _pids_in(namespace)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    sh("ip", "netns", "del", namespace, check=False)


def sweep_stale() -> None:
    """Namespaces (and their processes) left by a test process that no longer exists."""
    listed = sh("ip", "netns", "list", check=False).stdout.split("\n")
    for line in listed:
        match = re.match(rf"({re.escape(PREFIX)}(\d+)-\S+)", line)
        if match and not Path(f"/proc/{match.group(2)}").exists():
            _kill_namespace(match.group(1))


class Cluster:
    """The cluster; on loopback addresses (127.0.0.x, same ports) when namespaces cannot be
    made here (`self.no_netns` says why): then a host's power cut is SIGKILL to its
    processes, without the silent link."""

    def __init__(self) -> None:
        self.no_netns = why_no_namespaces()
        # PostgreSQL refuses to run as root: as root the members run as `postgres`.
        self.db_user = "postgres" if os.geteuid() == 0 else None
        self.tag = f"{PREFIX}{os.getpid()}"
        self.workdir = Path(tempfile.mkdtemp(prefix="ami-pgcluster-"))
        self.socket_dir = self.workdir / "sock"
        self.logs = self.workdir / "logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self.namespaces: list[str] = []
        self.down: set[str] = set()  # hosts whose power is cut

    # ------------------------------------------------------------------ hosts and network

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def address(self, host: str) -> str:
        return f"127.0.0.{HOSTS[host]}" if self.no_netns else f"{SUBNET}.{HOSTS[host]}"

    def build_network(self) -> None:
        sweep_stale()
        switch = self.ns("sw")
        sh("ip", "netns", "add", switch)
        self.namespaces.append(switch)
        sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "br0", "up")
        for host in HOSTS:
            namespace = self.ns(host)
            sh("ip", "netns", "add", namespace)
            self.namespaces.append(namespace)
            # The pair is made inside the switch: its host end moves straight into the host.
            sh("ip", "-n", switch, "link", "add", f"p-{host}", "type", "veth",
               "peer", "name", "eth0", "netns", namespace)  # fmt: skip
            sh("ip", "-n", switch, "link", "set", f"p-{host}", "master", "br0", "up")
            sh("ip", "-n", namespace, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            sh("ip", "-n", namespace, "link", "set", "eth0", "up")
            sh("ip", "-n", namespace, "link", "set", "lo", "up")

    def start(self, name: str, host: str, cmd: list, *, user: str | None = None, env=None):
        """Start `cmd` on `host` (in its namespace), logging to logs/<name>.log."""
        prefix = [] if self.no_netns else ["ip", "netns", "exec", self.ns(host)]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        self.processes[name] = subprocess.Popen(
            [*prefix, *map(str, cmd)],
            env=PLAIN_ENV | (env or {}),
            stdout=(self.logs / f"{name}.log").open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.processes[name]

    def on(self, host: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess:
        prefix = () if self.no_netns else ("ip", "netns", "exec", self.ns(host))
        return sh(*prefix, *cmd, check=False, timeout=timeout)

    def http_get(self, host: str, url: str) -> str:
        """The body of a GET from `host` ('' when it fails), with the system Python that
        Patroni needs anyway (no curl)."""
        fetch = (
            "import sys, urllib.request\n"
            "try:\n"
            "    print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())\n"
            "except OSError:\n"
            "    pass\n"
        )
        return self.on(host, "/usr/bin/python3", "-c", fetch, url).stdout

    # ------------------------------------------------------------------ the services

    def up(self) -> None:
        self.logs.mkdir(parents=True)
        self.socket_dir.mkdir()
        if self.db_user:
            shutil.chown(self.workdir, self.db_user, self.db_user)
        if not self.no_netns:
            self.build_network()
        dcs = self.address("dcs")
        self.start("etcd", "dcs", [
            ETCD, "--name", "dcs", "--data-dir", self.workdir / "etcd",
            "--listen-client-urls", f"http://{dcs}:{ETCD_PORT}",
            "--advertise-client-urls", f"http://{dcs}:{ETCD_PORT}",
            "--listen-peer-urls", f"http://{dcs}:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://{dcs}:{ETCD_PEER_PORT}",
            "--initial-cluster", f"dcs=http://{dcs}:{ETCD_PEER_PORT}",
            "--heartbeat-interval", "100", "--election-timeout", "1000",
        ])  # fmt: skip
        self.wait(
            lambda: '"health":"true"' in self.http_get("lb", f"http://{dcs}:{ETCD_PORT}/health"),
            30, "etcd answers",
        )  # fmt: skip
        for member in MEMBERS:
            self.start_member(member)
        self.start_balancer()
        self.wait(lambda: self.leader() is not None, 90, "a Patroni leader")
        self.wait(self.answers, 60, "PostgreSQL through the balancer")

    def member_config(self, member: str) -> Path:
        """deploy/patroni.yml with this member's addresses and the test's timings."""
        config = yaml.safe_load((ROOT / "deploy/patroni.yml").read_text())
        here = self.address(member)
        home = self.workdir / member
        home.mkdir(exist_ok=True)
        if self.db_user:
            shutil.chown(home, self.db_user, self.db_user)
        config["name"] = member
        config["restapi"] = {
            "listen": f"{here}:{API_PORT}",
            "connect_address": f"{here}:{API_PORT}",
        }
        config["etcd3"] = {"hosts": [f"{self.address('dcs')}:{ETCD_PORT}"]}
        dcs = config["bootstrap"]["dcs"]
        dcs |= {"ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT}
        parameters = dcs["postgresql"]["parameters"]
        for archiving in (
            "archive_mode",
            "archive_command",
        ):  # tests/cluster/test_backup_restore.py
            parameters.pop(archiving)
        # Small and quick: the test kills processes, never the machine, so the page cache
        # survives and fsync is not what keeps acknowledged commits (the sync standby does).
        # (full_page_writes stays on: pg_rewind of the old primary needs it.)
        parameters |= {"shared_buffers": "16MB", "max_connections": 60, "fsync": "off",
                       "wal_keep_size": "64MB"}  # fmt: skip
        config["bootstrap"]["initdb"] = [{"encoding": "UTF8"}, {"auth": "trust"}]
        network = "127.0.0.0/8" if self.no_netns else f"{SUBNET}.0/24"
        config["bootstrap"]["pg_hba"] = [
            "local all all trust",
            f"host replication all {network} trust",
            f"host all all {network} trust",
        ]
        pg = config["postgresql"]
        pg |= {
            "listen": f"{here}:{PG_PORT}",
            "connect_address": f"{here}:{PG_PORT}",
            "data_dir": str(home / "data"),
            "bin_dir": str(PG_BIN),
            "pgpass": str(home / "pgpass"),
        }
        pg["parameters"] = {"unix_socket_directories": str(home)}
        path = home / "patroni.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start_member(self, member: str) -> None:
        self.start(
            f"patroni-{member}", member, [PATRONI, self.member_config(member)], user=self.db_user
        )

    def start_balancer(self) -> None:
        env = {
            "AMI_PG_BIND": str(self.socket_dir / f".s.PGSQL.{PG_PORT}"),
            "AMI_PG_REPLICA_BIND": f"{self.address('lb')}:{PG_PORT + 1}",
            "AMI_PG_1": f"{self.address('db1')}:{PG_PORT}",
            "AMI_PG_2": f"{self.address('db2')}:{PG_PORT}",
            "AMI_PG_API_PORT": str(API_PORT),
        }
        self.start("haproxy", "lb", [HAPROXY, "-f", ROOT / "deploy/haproxy-postgres.cfg", "-db"],
                   env=env)  # fmt: skip

    # ------------------------------------------------------------------ looking at it

    def members(self) -> list[dict]:
        """Patroni's view of the cluster (name, role, state, lag), asked of any member."""
        for member in MEMBERS:
            out = self.http_get("lb", f"http://{self.address(member)}:{API_PORT}/cluster")
            try:
                return json.loads(out)["members"]
            except (ValueError, KeyError):
                continue
        return []

    def leader(self) -> str | None:
        for m in self.members():
            if m["role"] == "leader" and m["state"] == "running":
                return m["name"]
        return None

    def sync_standby(self) -> str | None:
        for m in self.members():
            # Patroni 3.0 says "running" for a replica, later versions "streaming".
            if m["role"] == "sync_standby" and m["state"] in ("running", "streaming"):
                return m["name"]
        return None

    @property
    def url(self) -> str:
        """DATABASE_URL for the application: the balancer's primary, over its unix socket."""
        return f"postgres://postgres@/ami?host={self.socket_dir}&port={PG_PORT}"

    def psql(self, query: str, db: str = "ami", timeout: float = 10) -> subprocess.CompletedProcess:
        return sh(
            PG_BIN / "psql", "-h", self.socket_dir, "-p", PG_PORT, "-U", "postgres", "-d", db,
            "-v", "ON_ERROR_STOP=1", "-tAc", query,
            check=False, timeout=timeout,
        )  # fmt: skip

    def answers(self) -> bool:
        return self.psql("SELECT 1", db="postgres", timeout=5).stdout.strip() == "1"

    @staticmethod
    def wait(condition, seconds: float, what: str, every: float = 0.2) -> float:
        """Poll `condition` until true; returns the seconds it took. Bounded."""
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > seconds:
                raise AssertionError(f"not within {seconds} s: {what}")
            time.sleep(every)
        return time.monotonic() - started

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # ------------------------------------------------------------------ failures

    def host_pids(self, host: str) -> list[int]:
        """The live processes of `host`: its namespace's, or on loopback those of the
        process groups started for it and its PostgreSQL (the postmaster and children)."""
        if not self.no_netns:
            return _pids_in(self.ns(host))
        groups = {p.pid for name, p in self.processes.items() if name.endswith(f"-{host}")}
        postmaster = None
        with contextlib.suppress(OSError, ValueError):
            pid_file = self.workdir / host / "data" / "postmaster.pid"
            postmaster = int(pid_file.read_text().split()[0])
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            state, ppid, pgid = fields[0], int(fields[1]), int(fields[2])
            pid = int(entry.name)
            if state != "Z" and (pgid in groups or postmaster in (pid, ppid)):
                pids.append(pid)
        return pids

    def cut_power(self, host: str) -> None:
        """The host dies: its link goes down, then all its processes get SIGKILL."""
        if not self.no_netns:
            sh("ip", "-n", self.ns("sw"), "link", "set", f"p-{host}", "down")
        self.down.add(host)
        for pid in self.host_pids(host):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name, process in self.processes.items():
            if name.endswith(f"-{host}") and process.poll() is None:
                process.wait(10)  # the `ip netns exec` wrapper follows its child

    def power_on(self, member: str) -> None:
        """The host comes back: link up, Patroni started on the data directory it had."""
        if not self.no_netns:
            sh("ip", "-n", self.ns("sw"), "link", "set", f"p-{member}", "up")
        self.down.discard(member)
        self.start_member(member)

    def switchover(self, leader: str, candidate: str) -> subprocess.CompletedProcess:
        """A planned switchover with Patroni's own tool, run from the balancer's host."""
        return self.on(
            "lb", "patronictl", "-c", str(self.workdir / leader / "patroni.yml"),
            "switchover", "ami", "--leader", leader, "--candidate", candidate, "--force",
            timeout=90,
        )  # fmt: skip

    def close(self) -> None:
        if self.no_netns:  # the members' PostgreSQL are not in their Patroni's group
            for member in MEMBERS:
                self.cut_power(member)
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for namespace in reversed(self.namespaces):
            _kill_namespace(namespace)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)
