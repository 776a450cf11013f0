"""Web load: a mixed operator workload against the production web process, with websockets.

The server is what `make run` and production start: `python -m amisite.serve` (uvicorn,
`AMI_WEB_WORKERS` x `AMI_WEB_THREADS`, pooled PostgreSQL, Redis, `DEBUG` off), in its own
process. The database is the dashboard bench's fleet (bench/dashboard.py: grid, meters,
customers, comm status, read results, open alarms, a day of intervals for every meter and a
month for 1,050): `--meters` (default 100,000) in database `--db` (default `ami_bench_web`),
built here unless `--reuse` finds it already built with that many meters.

Virtual operators, each a user of their own (same organisation and role) with a session,
loop: pick a page (weights below), GET it over a keep-alive connection, think (exponential,
mean `--think` s, default 5): a closed loop with think time, so N operators ask at most
N/think pages a second. `--think 0` is the saturation run: every operator asks again the
moment it is answered, req/s is the machine's ceiling and latency is queueing. The page
mix: home, the meter list (plain, a search, filters, a late page), meter detail, a month of
graph data, map data (the fleet and zoomed in), the alarm list and `/healthz` (ungated: the
same-run baseline).
Levels `--users` (default 10, 50, 200) run `--seconds` each. Meanwhile `--ws` websocket
subscribers (default 2,000: `--ws`/2 operators with the alarm list and the home open, one
/ws/alarms/ and one /ws/status/ socket each) stay connected in a separate process, and
`--alarm-rate` alarms/s are raised through the alarm engine (`evaluate_events`, committed);
the latency from raising to each connected alarm subscriber receiving it is reported.
PostgreSQL connections of the bench database are sampled every 0.2 s.

Figures per level and page: requests, errors (anything but 2xx/3xx; code -1: no answer in
30 s, 0: connection refused or reset),
throughput (requests over the level's wall time, which ends with its last answer), p50/p95/p99,
p95 / healthz p95; where the time went, from the server's `Server-Timing` (the bench turns
`AMI_SERVER_TIMING` on): waiting for one of the web's slots, in Django, its thread's CPU, its
SQL, and the rest (event loop, transport, this client); CPU seconds per level of the web
processes and of PostgreSQL's backends for the bench database (and per request), of this
load generator and of the websocket clients' process;
peak connections in use (by application_name);
alarm latency p50/p99 over every subscriber; the machine's load average per level (figures
from a shared machine are only comparable as ratios to /healthz of the same run).
Checked: the pages return what they should (first request of each); alarms that did not
reach a connected alarm subscriber are counted as missing.

    .venv/bin/python bench/web_load.py [--quick] [--meters N] [--reuse] [--keep]
        [--users 10,50,200] [--seconds S] [--think S] [--ws N] [--alarm-rate R] [--timeline]
        [--ws-workers N]

--quick: 5,000 meters, users 10,50, 15 s each, 200 websockets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amisite import proctree  # noqa: E402
from bench import webserver  # noqa: E402
from bench.benchdb import server_url  # noqa: E402

TEST_KEY = "dGVzdC1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q="
REQUEST_TIMEOUT = 30.0
TIMELINE: list[tuple[float, float]] = []  # (sent at, latency) of every request, all levels
# page name -> weight in the operator mix
WEIGHTS = {
    "home": 10,
    "meter_list": 12,
    "meter_search": 10,
    "meter_filters": 6,
    "meter_late_page": 3,
    "meter_detail": 14,
    "series_month": 10,
    "map_fleet": 6,
    "map_zoomed": 8,
    "alarms": 8,
    "healthz": 13,
}


def emit(metric, value, unit, baseline=None, ratio=None, **extra) -> None:
    line = {"bench": "web_load", "metric": metric, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


# ------------------------------------------------------------------ database


def prepare_database(url: str, name: str, meters: int, month_meters: int, reuse: bool) -> dict:
    """Build (or reuse) the fleet; returns what took how long."""
    import psycopg

    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("AMI_SECRETS_KEY", TEST_KEY)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    built = False
    if reuse:
        with psycopg.connect(url + "/postgres", autocommit=True) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
        if exists:
            with psycopg.connect(f"{url}/{name}") as conn:
                try:
                    have = conn.execute("SELECT count(*) FROM meters_meter").fetchone()[0]
                except psycopg.Error:
                    have = -1
            reuse = have == meters
            log(f"database {name}: {have} meters, {'reused' if reuse else 'rebuilt'}")
        else:
            reuse = False
    t0 = time.perf_counter()
    if reuse:
        os.environ["DATABASE_URL"] = f"{url}/{name}"
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)  # the code may have moved on since it was built
    else:
        from bench import dashboard
        from bench.benchdb import setup_django

        setup_django(url, name)
        now = datetime.now(UTC)
        _, model = dashboard.build_fleet(meters)
        dashboard.build_collection(now)
        dashboard.load_store(model, now, month_meters)
        built = True
    return {"built": built, "build_s": round(time.perf_counter() - t0, 1)}


def operators(user, n: int) -> list:
    """n operators like `user` (same organisation and role), each a user of their own: per-user
    work (sign-in, permissions, scope, the status socket's snapshot) is paid per operator, as
    in a control room, not once for a bench that signs everyone in as one user."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    names = [f"bench-operator-{i:04d}" for i in range(1, n)]
    have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    made = User.objects.bulk_create(
        User(username=name, password=user.password, organisation_id=user.organisation_id)
        for name in names
        if name not in have
    )
    groups = list(user.groups.all())
    through = User.groups.through
    through.objects.bulk_create(
        [through(user_id=u.pk, group_id=g.pk) for u in made for g in groups],
        ignore_conflicts=True,
    )
    others = list(User.objects.filter(username__in=names).order_by("username"))
    return [user, *others]


def sessions(users: list) -> list[str]:
    """A signed-in session per user, as a browser holds it after logging in and opening its
    first page: the sign-in wrote whether the user is a customer (portal/door.py) and the
    first page that no second factor is asked of it (accounts/two_factor.py). Without them
    every operator's first page of every run wrote its session, a third of the requests of
    a 20-second level at 200 operators, where a real session does it once in hours."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts import two_factor
    from portal import door

    keys = []
    for user in users:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        browser = SimpleNamespace(session=store, user=user, POST={})
        door.signed_in(None, browser, user)  # what the sign-in writes
        assert two_factor.is_verified(browser), "bench operators are asked no second factor"
        store.create()
        keys.append(store.session_key)
    return keys


def page_urls(rng: random.Random) -> dict:
    """Page name -> a function giving a URL (random meter, search, node where it applies)."""
    from bench.dashboard import PROFILE
    from meters.models import GridNode, Meter

    serials = list(Meter.objects.order_by("?").values_list("serial", flat=True)[:2000])
    month_meters = list(
        Meter.objects.filter(pk__in=_month_meter_ids()).values_list("pk", flat=True)
    )
    regions = list(GridNode.objects.filter(kind="region").values_list("pk", flat=True))
    feeders = list(
        GridNode.objects.filter(kind="feeder").values_list("latitude", "longitude")[:500]
    )
    count = Meter.objects.count()
    day_end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    span = (
        f"&start={(day_end - timedelta(days=30)).isoformat()}&end={day_end.isoformat()}"
    ).replace("+00:00", "Z")

    def zoomed():
        lat, lon = rng.choice(feeders)
        lat, lon = float(lat), float(lon)
        box = f"{lon - 0.02:.5f},{lat - 0.01:.5f},{lon + 0.02:.5f},{lat + 0.01:.5f}"
        return f"/map/data/?bbox={box}&zoom=15"

    return {
        "home": lambda: "/",
        "meter_list": lambda: "/meters/",
        "meter_search": lambda: (
            f"/meters/?q={rng.choice(['Customer+', '', 'M00'])}{rng.randint(1, 99999)}"
        ),
        "meter_filters": lambda: f"/meters/?status=active&read=over3d&node={rng.choice(regions)}",
        "meter_late_page": lambda: f"/meters/?page={rng.randint(2, max(2, count // 50))}",
        "meter_detail": lambda: f"/meters/{rng.choice(serials)}/",
        "series_month": lambda: (
            f"/api/meters/{rng.choice(month_meters)}/series/?channels={PROFILE[0][0]}{span}"
        ),
        "map_fleet": lambda: "/map/data/?bbox=-3.5,50.0,0.5,53.0&zoom=7",
        "map_zoomed": zoomed,
        "alarms": lambda: "/alarms/",
        "healthz": lambda: "/healthz",
    }  # fmt: skip


def _month_meter_ids() -> list[int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT meter_id FROM meters_intervalreading GROUP BY meter_id "
            "HAVING count(*) > 200 LIMIT 500"
        )
        return [m for (m,) in cur.fetchall()]


# ------------------------------------------------------------------ the server


# ------------------------------------------------------------------ HTTP load


class Conn:
    """One keep-alive HTTP/1.1 connection, GET only (what a browser tab does for pages)."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes, dict]:
        reused = self.writer is not None
        try:
            return await self._get(path)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
            # The server closed the idle keep-alive connection (uvicorn: after 5 s) as we
            # sent: a browser opens a new one and sends again, so do we, once.
            self.close()
            return await self._get(path)

    async def _get(self, path: str) -> tuple[int, bytes, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Cookie: sessionid={self.cookie}\r\n"
            "Accept: text/html,application/json\r\n\r\n".encode()
        )
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while size := int((await self.reader.readline()).strip(), 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            body = b"".join(parts)
        else:
            body = await self.reader.read()
        if headers.get("connection") == "close":
            self.close()
        return status, body, headers

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def operator(port, cookie, urls, names, weights, think, until, rng, out):
    conn = Conn(port, cookie)
    # Each operator starts as if in the middle of a session: its first page comes after an
    # exponential thought like every later one, so the level asks N/think pages a second from
    # its first second on. A start spread evenly over [0, think] (until 2026-12-06) asked
    # N/think first pages a second plus the early starters' second and third pages, rising to
    # ~1.9x the steady rate 4-5 s into the level (simulated: 43, 52, 59, 67, 75, then 40 pages
    # a second at 200 operators, think 5 s): the "ramp" of the 200-user timelines.
    await asyncio.sleep(rng.expovariate(1 / think) if think else 0)
    while time.monotonic() < until:
        name = rng.choices(names, weights)[0]
        path = urls[name]()
        start = time.monotonic()
        timing = None
        try:
            status, _, headers = await asyncio.wait_for(conn.get(path), REQUEST_TIMEOUT)
            timing = headers.get("server-timing")
        except TimeoutError:
            status = -1  # no answer within REQUEST_TIMEOUT
            conn.close()
        except (OSError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            status = 0  # refused, reset or garbled
            conn.close()
        out.append((name, status, time.monotonic() - start, timing))
        TIMELINE.append((start, time.monotonic() - start))
        # Thinking past the end of the level is not part of it: the level's wall time (the
        # throughput's divisor) ends with its last answer, not the longest last thought.
        pause = rng.expovariate(1 / think) if think else 0
        await asyncio.sleep(min(pause, max(0.0, until - time.monotonic())))
    conn.close()


def server_timing(header: str | None) -> dict[str, float]:
    """`Server-Timing: gate;dur=1.2, app;dur=30.5` -> {"gate": 0.0012, "app": 0.0305} (s)."""
    got = {}
    for part in (header or "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            got[name] = float(dur) / 1000
    return got


async def run_level(port, cookies, urls, users, seconds, think, seed) -> tuple[list, float]:
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    out: list = []
    until = time.monotonic() + seconds
    t0 = time.monotonic()
    await asyncio.gather(*[
        operator(port, cookies[i % len(cookies)], urls, names, weights, think, until,
                 random.Random(seed * 1000 + i), out)
        for i in range(users)
    ])  # fmt: skip
    return out, time.monotonic() - t0


def check_pages(port, cookie, urls, meters: int) -> None:
    """Each page once: right status and the content the page is for."""

    async def go():
        conn = Conn(port, cookie)
        for name, make in urls.items():
            status, body, _ = await conn.get(make())
            assert status == 200, (name, status, body[:300])
            if name == "map_fleet":
                data = json.loads(body)
                assert data["total"] == meters, (data["total"], meters)
            if name == "series_month":
                assert len(json.loads(body)["channels"][0]["timestamps"]) >= 29 * 24
            if name in ("meter_list", "meter_late_page"):
                assert b"<table" in body, name
        conn.close()

    asyncio.run(go())


# ------------------------------------------------------------------ websockets (own process)


def ws_process(port, cookies, count, ready, stop, results):
    """`count` websockets, half alarms, half status; reports when each alarm id arrived."""
    import websockets

    arrivals: dict[int, list[float]] = {}
    stats = {"connected": 0, "alarm_sockets": 0, "failed": 0, "dropped": 0, "status_messages": 0,
             "connect_s": None}  # fmt: skip

    async def subscriber(i):
        # Operator i // 2 has the alarm list and the home open: one socket each.
        path = "/ws/alarms/" if i % 2 == 0 else "/ws/status/"
        connected = False
        try:
            async with websockets.connect(
                f"ws://127.0.0.1:{port}{path}", origin=f"http://127.0.0.1:{port}",
                additional_headers={"Cookie": f"sessionid={cookies[(i // 2) % len(cookies)]}"},
                max_queue=None, open_timeout=60, ping_interval=None,
            ) as ws:  # fmt: skip
                stats["connected"] += 1
                stats["alarm_sockets"] += path == "/ws/alarms/"
                connected = True
                async for raw in ws:
                    now = time.time()
                    data = json.loads(raw)
                    if data.get("type") == "alarm":
                        arrivals.setdefault(int(data["alarm"]["id"]), []).append(now)
                    elif path == "/ws/status/":
                        stats["status_messages"] += 1
        except asyncio.CancelledError:
            return
        except Exception:
            stats["dropped" if connected else "failed"] += 1

    async def main():
        t0 = time.monotonic()
        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(subscriber(i)))
            if i % 20 == 19:
                await asyncio.sleep(0.2)  # 100 a second, as browsers come back after a restart
        deadline = time.monotonic() + 120
        while stats["connected"] + stats["failed"] < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stats["connect_s"] = round(time.monotonic() - t0, 1)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    results.put((stats, arrivals))


def raise_alarms(rate: float, until: float, started: dict) -> None:
    """Power-failure events on meters without an open alarm, through the alarm engine."""
    from meters.alarms.engine import active_rules, evaluate_events
    from meters.models import Meter
    from meters.store import EventRecord

    rules = active_rules()
    open_ = Meter.objects.filter(alarms__kind="power_failure", alarms__state="raised")
    meters = list(
        Meter.objects.exclude(pk__in=open_).order_by("?").values_list("pk", flat=True)[:5000]
    )
    t0, n = time.monotonic(), 0
    now = datetime.now(UTC)
    while time.monotonic() < until and n < len(meters):
        due = t0 + n / rate
        if (delay := due - time.monotonic()) > 0:
            time.sleep(delay)
        begin = time.time()
        event = EventRecord(meter_id=meters[n], log="0-0:99.98.0*255",
                            ts=now + timedelta(microseconds=n), code=1)  # fmt: skip
        for alarm in evaluate_events([event], rules=rules):
            started[alarm.pk] = begin
        n += 1


def tree_cpu(pid: int, children: bool = True) -> float:
    """CPU seconds (user + system) used so far by `pid` and its descendants (Linux /proc;
    0 elsewhere or for pid 0): the web's uvicorn workers, the websocket clients."""
    if not pid or not os.path.exists(f"/proc/{pid}/stat"):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in (pid, *(proctree.descendants(pid) if children else ())):
        try:
            with open(f"/proc/{each}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


# ------------------------------------------------------------------ connections in use


class ConnectionProbe(threading.Thread):
    """Samples pg_stat_activity for the bench database every 0.2 s; keeps the peaks."""

    def __init__(self, url: str, name: str):
        super().__init__(daemon=True)
        self.url, self.name = url, name
        self.stop = threading.Event()
        self.peak = 0
        self.peak_by_app: dict[str, int] = {}
        self.restarts = 0
        # PostgreSQL backend pid -> CPU seconds when last seen (also parallel workers): a
        # backend that left keeps its last figure. Local servers only (/proc).
        self.backend_cpu: dict[int, float] = {}

    def reset(self):
        self.peak, self.peak_by_app = 0, {}

    def database_cpu(self) -> float:
        """CPU seconds used so far by the backends seen serving the bench database."""
        return sum(self.backend_cpu.values())

    def run(self):
        import psycopg

        while not self.stop.is_set():
            try:
                with psycopg.connect(f"{self.url}/postgres", autocommit=True) as conn:
                    while not self.stop.is_set():
                        self.sample(conn)
                        self.stop.wait(0.2)
            except psycopg.OperationalError:  # the server restarted: sample again after it
                self.restarts += 1
                self.stop.wait(1)

    def sample(self, conn):
        rows = conn.execute(
            "SELECT coalesce(application_name, ''), backend_type, pid FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.name],
        ).fetchall()
        # Client connections only: PostgreSQL's parallel workers of a big aggregate show up
        # with the same database and application_name, and hold no pool slot.
        clients: dict[str, int] = {}
        for app, kind, _ in rows:
            if kind == "client backend":
                clients[app] = clients.get(app, 0) + 1
        self.peak = max(self.peak, sum(clients.values()))
        for app, n in clients.items():
            self.peak_by_app[app] = max(self.peak_by_app.get(app, 0), n)
        for _, _, pid in rows:
            if (used := tree_cpu(pid, children=False)) or pid not in self.backend_cpu:
                self.backend_cpu[pid] = used


# ------------------------------------------------------------------ main


def summarise(level: int, samples: list, wall: float, probe: ConnectionProbe) -> list[dict]:
    by_page: dict[str, list] = {}
    inside: dict[str, dict[str, list]] = {}  # page -> part -> seconds, from Server-Timing
    for name, status, elapsed, timing in samples:
        by_page.setdefault(name, []).append((status, elapsed))
        parts = server_timing(timing)
        if parts and 200 <= status < 400:
            server = parts.get("gate", 0) + parts.get("start", 0) + parts["app"]
            parts["outside"] = elapsed - server  # event loop, transport, the client's loop
            for part, value in parts.items():
                inside.setdefault(name, {}).setdefault(part, []).append(value)
    health = [e for s, e in by_page.get("healthz", []) if 200 <= s < 400]
    base95 = pct(health, 0.95) * 1000 if health else None
    rows = []
    for name in WEIGHTS:
        got = by_page.get(name, [])
        ok = [e for s, e in got if 200 <= s < 400]
        errors = len(got) - len(ok)
        codes = sorted({s for s, _ in got if not 200 <= s < 400})
        p95 = pct(ok, 0.95) * 1000
        row = {
            "users": level, "page": name, "requests": len(got), "errors": errors,
            "error_codes": codes, "rps": round(len(got) / wall, 1),
            "p50": round(pct(ok, 0.5) * 1000, 1), "p95": round(p95, 1),
            "p99": round(pct(ok, 0.99) * 1000, 1),
        }  # fmt: skip
        # Where the time went (server-side, ms): waiting for a slot, in Django, its CPU.
        for part, values in inside.get(name, {}).items():
            row[f"{part}_p50"] = round(pct(values, 0.5) * 1000, 1)
            row[f"{part}_p95"] = round(pct(values, 0.95) * 1000, 1)
        rows.append(row)
        emit(f"{name}_p95", row["p95"], "ms", round(base95, 1) if base95 else None,
             round(p95 / base95, 2) if base95 else None,
             **{k: v for k, v in row.items() if k not in ("page", "p95")})  # fmt: skip
    total = len(samples)
    errors = sum(r["errors"] for r in rows)
    emit("throughput", round(total / wall, 1), "req/s", users=level, requests=total,
         errors=errors, seconds=round(wall, 1))  # fmt: skip
    emit("db_connections_peak", probe.peak, "connections", users=level,
         by_application=probe.peak_by_app, server_restarts_seen=probe.restarts)  # fmt: skip
    return rows


def model_line(think: float) -> str:
    if think:
        return (
            f"model: closed loop with think time - each operator waits for its page, then "
            f"thinks (exponential, mean {think} s): N operators ask at most N/{think:g} "
            "pages/s, less when answers are slow (200 operators: <= "
            f"{200 / think:.0f}/s)"
        )
    return (
        "model: saturation - no think time, each operator asks again the moment it is "
        "answered: req/s is the ceiling of this machine, latency there is mostly queueing "
        "(users / throughput), not what an operator waits at that many operators"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--meters", type=int, default=None)
    p.add_argument("--db", default="ami_bench_web")
    p.add_argument("--reuse", action="store_true", help="reuse --db if it has --meters meters")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--users", default=None, help="levels, e.g. 10,50,200")
    p.add_argument("--seconds", type=float, default=None, help="per level")
    p.add_argument("--think", type=float, default=5.0, help="mean think time, s")
    p.add_argument("--ws", type=int, default=None, help="websocket subscribers")
    p.add_argument("--alarm-rate", type=float, default=0.5, help="alarms raised per second")
    p.add_argument(
        "--ws-workers", type=int, default=0,
        help="serve the websockets from a web instance of their own with this many workers "
        "(docs/operations.md: pages and sockets apart); 0: the page instance serves both",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=21)
    p.add_argument(
        "--timeline", action="store_true",
        help="also print every 2 s of the run: requests, p50 and max latency (stalls show)",
    )  # fmt: skip
    args = p.parse_args(argv)
    meters = args.meters or (5_000 if args.quick else 100_000)
    levels = [int(x) for x in (args.users or ("10,50" if args.quick else "10,50,200")).split(",")]
    seconds = args.seconds or (15 if args.quick else 40)
    ws_count = args.ws if args.ws is not None else (200 if args.quick else 2000)
    url = server_url()
    # The bench's own process raises the alarms, so it must publish to the web's Redis: with
    # REDIS_URL unset it would set up an in-memory channel layer and every alarm go missing.
    redis_url = os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"ami-bench-web-{os.getpid()}"
    os.environ["AMI_CHANNEL_PREFIX"] = prefix
    os.environ["CELERY_BROKER_URL"] = "memory://"
    built = prepare_database(url, args.db, meters, 50 if args.quick else 1_050, args.reuse)

    from accounts.models import User
    from meters.alarms.models import Alarm, AlarmRule

    user = User.objects.get(username="bench-operator")
    rule, _ = AlarmRule.objects.get_or_create(
        name="Power failures (web_load)", organisation=user.organisation,
        defaults={"kinds": ["power_failure"], "severity": 30},
    )  # fmt: skip
    # Every run starts without the power failures earlier runs raised: kept (--keep), they
    # piled up (210 open after a day of runs), and the alarm list's outage panel and the
    # home's figures grew with them, so runs of different days measured different pages.
    cleared = Alarm.objects.filter(rule=rule).delete()[1].get(Alarm._meta.label, 0)
    log(f"{cleared} alarms of earlier runs cleared")
    people = operators(user, max(max(levels), (ws_count + 1) // 2, 1))
    cookies = sessions(people)
    log(f"{len(people)} operators signed in")
    rng = random.Random(args.seed)
    urls = page_urls(rng)
    from django.db import connections

    connections.close_all()
    server, port = webserver.start(
        DATABASE_URL=f"{url}/{args.db}", REDIS_URL=redis_url, AMI_CHANNEL_PREFIX=prefix,
        LOG_LEVEL="WARNING", CELERY_BROKER_URL="memory://", AMI_SERVER_TIMING="true",
    )  # fmt: skip
    ws_server, ws_port = None, port
    if ws_count and args.ws_workers:
        ws_server, ws_port = webserver.start(
            DATABASE_URL=f"{url}/{args.db}", REDIS_URL=redis_url, AMI_CHANNEL_PREFIX=prefix,
            LOG_LEVEL="WARNING", CELERY_BROKER_URL="memory://",
            AMI_WEB_WORKERS=str(args.ws_workers),
        )  # fmt: skip
    probe = ConnectionProbe(url, args.db)
    probe.start()
    ctx = multiprocessing.get_context("spawn")
    ws_ready, ws_stop, ws_results = ctx.Event(), ctx.Event(), ctx.Queue()
    ws = None
    try:
        check_pages(port, cookies[0], urls, meters)
        if ws_count:
            ws_args = (ws_port, cookies, ws_count, ws_ready, ws_stop, ws_results)
            ws = ctx.Process(target=ws_process, args=ws_args)
            ws.start()
            assert ws_ready.wait(180), "websocket subscribers did not connect"
        all_rows, started, loads = [], {}, {}
        for level in levels:
            load_before = os.getloadavg()[0]
            cpu_before = (time.process_time(), tree_cpu(server.pid), tree_cpu(ws.pid if ws else 0),
                          probe.database_cpu(),
                          tree_cpu(ws_server.pid) if ws_server else 0.0)  # fmt: skip
            probe.reset()
            until = time.monotonic() + seconds
            raiser = threading.Thread(target=raise_alarms, args=(args.alarm_rate, until, started))
            if ws_count and args.alarm_rate:
                raiser.start()
            samples, wall = asyncio.run(run_level(port, cookies, urls, level, seconds,
                                                  args.think, args.seed + level))  # fmt: skip
            if raiser.is_alive() or raiser.ident:
                raiser.join()
            all_rows += summarise(level, samples, wall, probe)
            cpu = (time.process_time(), tree_cpu(server.pid), tree_cpu(ws.pid if ws else 0),
                   probe.database_cpu(), tree_cpu(ws_server.pid) if ws_server else 0.0)  # fmt: skip
            used = [after - before for before, after in zip(cpu_before, cpu, strict=True)]
            loads[level] = (load_before, os.getloadavg()[0], len(samples) / wall, probe.peak,
                            len(samples), wall, *used)  # fmt: skip
            log(f"level {level}: {len(samples)} requests in {wall:.0f} s")
        ws_stats = None
        if ws is not None:
            time.sleep(2)  # let the last alarms arrive before the subscribers close
            ws_stop.set()
            ws_stats, arrivals = ws_results.get(timeout=120)
            ws.join(30)
            alarm_subs = ws_stats["alarm_sockets"]  # those that connected
            latencies, missing = [], 0
            for pk, t in started.items():
                got = arrivals.get(pk, [])
                missing += alarm_subs - len(got)
                latencies += [a - t for a in got]
            emit("alarm_latency_p99", round(pct(latencies, 0.99) * 1000, 1), "ms",
                 p50=round(pct(latencies, 0.5) * 1000, 1), alarms=len(started),
                 deliveries=len(latencies), missing_deliveries=missing, **ws_stats)  # fmt: skip
    finally:
        ws_stop.set()
        if ws is not None and ws.is_alive():
            ws.terminate()
        probe.stop.set()
        webserver.stop(server)
        if ws_server is not None:
            webserver.stop(ws_server)
        if not args.keep:
            from bench.benchdb import drop_database

            drop_database(url, args.db)

    from amisite import capacity

    print(f"\nweb_load: {meters:,} meters ({'built' if built['built'] else 'reused'}), "
          f"{capacity.web_workers()} uvicorn workers x {capacity.web_threads()} slots, "
          f"pool {capacity.pool_max('web')}/worker, {os.cpu_count()} CPUs shared with the "
          f"load generator; {len(people)} operators; {seconds:.0f} s per level"
          + (f"; websockets on a web instance of their own, {args.ws_workers} workers"
             if ws_server else ""))  # fmt: skip
    print(model_line(args.think))
    for level, (before, after, rps, peak, n, wall, gen, web, wsp, pg, wsweb) in loads.items():
        print(f"  {level:4d} users: {rps:5.1f} req/s, peak {peak} database connections, "
              f"load average {before:.1f} -> {after:.1f}; CPU s: web {web:.1f} "
              f"({web / wall:.2f} cores, {web / max(n, 1) * 1000:.0f} ms a request), "
              f"PostgreSQL {pg:.1f} ({pg / max(n, 1) * 1000:.0f} ms a request), load "
              f"generator {gen:.1f}, websocket clients {wsp:.1f}"
              + (f", websocket web {wsweb:.1f} ({wsweb / wall:.2f} cores)"
                 if ws_server else ""))  # fmt: skip
    print(
        "server side (Server-Timing, ms): gate = waiting for a slot, app = in Django, cpu = "
        "its thread's CPU, db = its SQL, out = the rest (event loop, transport, load generator)"
    )
    print(f"{'users':>5} {'page':16} {'req':>6} {'err':>4} {'req/s':>6} "
          f"{'p50':>7} {'p95':>7} {'p99':>7} {'p95/healthz':>11} "
          f"{'gate95':>7} {'app50':>6} {'app95':>6} {'cpu50':>6} {'db50':>5} {'out50':>6} "
          f"{'out95':>6}")  # fmt: skip
    base = {r["users"]: r["p95"] for r in all_rows if r["page"] == "healthz"}
    for r in all_rows:
        flag = "" if r["p95"] < 500 else "  p95 over 500 ms"
        ratio = f"{r['p95'] / base[r['users']]:11.1f}" if base.get(r["users"]) else f"{'-':>11}"
        parts = " ".join(
            f"{r[k]:{w}.0f}" if k in r else f"{'-':>{w}}"
            for k, w in (
                ("gate_p95", 7),
                ("app_p50", 6),
                ("app_p95", 6),
                ("cpu_p50", 6),
                ("db_p50", 5),
                ("outside_p50", 6),
                ("outside_p95", 6),
            )
        )
        print(f"{r['users']:5d} {r['page']:16} {r['requests']:6d} {r['errors']:4d} {r['rps']:6.1f} "
              f"{r['p50']:7.0f} {r['p95']:7.0f} {r['p99']:7.0f} {ratio} {parts}{flag}")  # fmt: skip
    if ws_stats is not None:
        print(f"websockets: {ws_stats}; alarm latency p50 {pct(latencies, 0.5) * 1000:.0f} ms, "
              f"p99 {pct(latencies, 0.99) * 1000:.0f} ms over {len(latencies)} deliveries "
              f"of {len(started)} alarms, {missing} missing")  # fmt: skip
    if args.timeline:
        print_timeline(TIMELINE)
    errors = sum(r["errors"] for r in all_rows)
    return 1 if errors else 0


def print_timeline(samples: list[tuple[float, float]], step: float = 2.0) -> None:
    """Latency over the run, `step` seconds a line: a stall of the whole web (a burst of
    periodic work, a long garbage collection) shows as a run of long bars."""
    if not samples:
        return
    first = min(t for t, _ in samples)
    slots: dict[int, list[float]] = {}
    for t, latency in samples:
        slots.setdefault(int((t - first) / step), []).append(latency)
    print(f"timeline ({step:g} s a line): requests, p50, max (# = 50 ms of max)")
    for slot in sorted(slots):
        got = sorted(slots[slot])
        p50, top = got[len(got) // 2] * 1000, got[-1] * 1000
        print(f"{slot * step:6.0f} s {len(got):4d} {p50:6.0f} ms {top:6.0f} ms "
              f"{'#' * min(80, int(top / 50))}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
