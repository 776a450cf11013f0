"""Benchmark: the operator dashboard's server time at fleet scale, and the map in a browser.

Builds a throwaway PostgreSQL database (`ami_dash_bench` on the server of DATABASE_URL,
default postgres://postgres@127.0.0.1:5432; created, migrated and dropped here) with a
realistic grid: 4 regions > 20 substations > 200 feeders > 2,000 transformers > 100,000
service points, one meter and one customer each (quick: 5,000), comm status for every meter
(mostly fresh, some stale, some unreachable), today's read results, open alarms, and the
measurement store: 96 intervals (4 channels, wide rows) for every meter plus a month for
1,050 of them -- 12.5 M rows, 50 M values -- by binary COPY, and a month of daily rollups.

Then, through Django's test client signed in as a utility-level operator (who sees the
whole fleet), server time of: home, meter list (filters, a search, sorted, a late page),
meter detail, one month of graph data (`/api/meters/<id>/series/`), map data for the
whole fleet (clustered) and zoomed in, the grid tree and one branch. Baseline in the same
run, alternating A B: `/healthz` (a trivial view: `SELECT 1` through the same stack).
Figures: p95 per round, median of the rounds; the ratio is A / B.

With Chromium (skip: --no-browser), the map page is opened on the same data under uvicorn
and panned/zoomed; the longest main-thread task (PerformanceObserver longtask) and the
longest frame are reported.

    .venv/bin/python bench/dashboard.py [--quick] [--keep] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amisite import pgbulk  # noqa: E402

BENCH_DB = "ami_dash_bench"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
QH_US = 900 * 1_000_000
PROFILE = [("1-0:1.29.0*255", "Wh"), ("1-0:2.29.0*255", "Wh"), ("1-0:3.29.0*255", "varh"),
           ("1-0:4.29.0*255", "varh")]  # fmt: skip
TARGET_MS = 200


def emit(metric, value, unit, baseline=None, ratio=None, **extra):
    line = {
        "bench": "dashboard",
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return url.rsplit("/", 1)[0]


def setup_django(url: str) -> None:
    import psycopg

    admin = psycopg.connect(url + "/postgres", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        cur.execute(f"CREATE DATABASE {BENCH_DB}")
    admin.close()
    os.environ["DATABASE_URL"] = f"{url}/{BENCH_DB}"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("AMI_SECRETS_KEY", "dGVzdC1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q=")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's context capture, no e-mail sending
    settings.ALLOWED_HOSTS = ["*"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)


def drop_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    admin = psycopg.connect(url + "/postgres", autocommit=True)
    with admin.cursor() as cur:
        # FORCE: the browser run's server threads may still hold connections.
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    admin.close()


def sql(statement: str, params=()) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(statement, params)


def scalar(statement: str, params=()):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchone()[0]


def insert_select(model, exprs: dict[str, str], from_sql: str, params=()) -> None:
    """INSERT INTO model's table SELECT ...: given SQL for some columns, defaults for the rest."""
    from django.db import connection

    columns, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key and f.column not in exprs:
            continue
        columns.append(f.column)
        if f.column in exprs:
            values.append(exprs[f.column])
        else:  # inlined, so `params` are only those of `exprs` (column order) and `from_sql`
            value = f.get_db_prep_save(f.get_default(), connection)
            with connection.cursor() as cur:
                values.append(cur.cursor.mogrify("%s", [value]).replace("%", "%%"))
    statement = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} {from_sql}"
    )
    sql(statement, params)


def build_fleet(n_meters: int):
    """Organisations, users, a model with 4 profile channels, the grid and the meters."""
    from accounts import roles
    from accounts.models import Organisation, User
    from meters.choices import ChannelKind, NodeKind
    from meters.models import (
        Channel,
        ConcentratorEndpoint,
        Customer,
        DataConcentrator,
        GridNode,
        Meter,
        MeterEndpoint,
        MeterModel,
    )

    sql("SELECT setseed(0.42)")
    utility = Organisation.objects.create(name="Utility", code="utility")
    north = Organisation.objects.create(name="North", code="north", parent=utility)
    south = Organisation.objects.create(name="South", code="south", parent=utility)
    model = MeterModel.objects.create(manufacturer="Bench", name="4ch", organisation=utility)
    for obis, unit in PROFILE:
        Channel.objects.create(
            meter_model=model, obis=obis, name=obis, unit=unit, kind=ChannelKind.PROFILE,
            profile_obis="1-0:99.1.0*255",
        )  # fmt: skip
    Channel.objects.create(
        meter_model=model, obis="1-0:1.8.0*255", name="Import", unit="Wh",
        kind=ChannelKind.REGISTER,
    )  # fmt: skip
    from django.contrib.auth.models import Group

    user = User.objects.create_user("bench-operator", password="pw", organisation=utility)
    user.groups.set(Group.objects.filter(name=roles.OPERATOR))

    per_sp = 50
    transformers = max(n_meters // per_sp, 1)
    feeders = max(transformers // 10, 1)
    substations = max(feeders // 10, 1)
    regions = 4 if substations >= 4 else 1
    # Upper levels through the ORM (few rows); their coordinates spread over ~250 km.
    made = {"region": [], "substation": [], "feeder": []}
    for r in range(regions):
        org = north if r < max(regions - 1, 1) else south
        lat, lon = 51.0 + (r % 2) * 0.9, -2.0 + (r // 2) * 1.4
        made["region"].append(GridNode.objects.create(
            kind=NodeKind.REGION, code=f"R{r}", name=f"Region {r}", organisation=org,
            latitude=round(lat, 6), longitude=round(lon, 6),
        ))  # fmt: skip
    for s in range(substations):
        parent = made["region"][s % regions]
        made["substation"].append(GridNode.objects.create(
            kind=NodeKind.SUBSTATION, code=f"S{s}", name=f"Substation {s}", parent=parent,
            organisation_id=parent.organisation_id, voltage_kv=33,
            latitude=round(float(parent.latitude) + ((s * 37) % 11 - 5) * 0.07, 6),
            longitude=round(float(parent.longitude) + ((s * 53) % 13 - 6) * 0.09, 6),
        ))  # fmt: skip
    for f in range(feeders):
        parent = made["substation"][f % substations]
        made["feeder"].append(GridNode(
            kind=NodeKind.FEEDER, code=f"F{f}", name=f"Feeder {f}", parent=parent,
            organisation_id=parent.organisation_id, voltage_kv=11, path="",
            latitude=round(float(parent.latitude) + ((f * 29) % 9 - 4) * 0.012, 6),
            longitude=round(float(parent.longitude) + ((f * 31) % 9 - 4) * 0.018, 6),
        ))  # fmt: skip
    GridNode.objects.bulk_create(made["feeder"], batch_size=2000)
    sql(
        "UPDATE meters_gridnode f SET path = s.path || f.id || '/' FROM meters_gridnode s "
        "WHERE f.parent_id = s.id AND f.kind = 'feeder'"
    )
    # Transformers and service points set-based in SQL, paths included.
    insert_select(
        GridNode,
        {
            "parent_id": "f.id", "path": "''", "kind": "'transformer'",
            "name": "'Transformer ' || f.code || '-' || g", "code": "'T' || f.code || '-' || g",
            "organisation_id": "f.organisation_id", "rated_kva": "200",
            "latitude": "round((f.latitude + (random() - 0.5) * 0.03)::numeric, 6)",
            "longitude": "round((f.longitude + (random() - 0.5) * 0.045)::numeric, 6)",
        },
        "FROM meters_gridnode f CROSS JOIN generate_series(1, %s) g WHERE f.kind = 'feeder'",
        [max(transformers // feeders, 1)],
    )  # fmt: skip
    sql(
        "UPDATE meters_gridnode t SET path = f.path || t.id || '/' FROM meters_gridnode f "
        "WHERE t.parent_id = f.id AND t.kind = 'transformer'"
    )
    n_tr = GridNode.objects.filter(kind=NodeKind.TRANSFORMER).count()
    per_tr = -(-n_meters // n_tr)
    insert_select(
        GridNode,
        {
            "parent_id": "t.id", "path": "''", "kind": "'service_point'",
            "name": "'Service point ' || g", "code": "t.code || '-SP' || g",
            "organisation_id": "t.organisation_id",
            "latitude": "round((t.latitude + (random() - 0.5) * 0.004)::numeric, 6)",
            "longitude": "round((t.longitude + (random() - 0.5) * 0.006)::numeric, 6)",
            "address": "g || ' ' || t.code || ' Street'",
        },
        "FROM meters_gridnode t CROSS JOIN generate_series(1, %s) g "
        "WHERE t.kind = 'transformer'",
        [per_tr],
    )  # fmt: skip
    sql(
        "UPDATE meters_gridnode sp SET path = t.path || sp.id || '/' FROM meters_gridnode t "
        "WHERE sp.parent_id = t.id AND sp.kind = 'service_point'"
    )
    sql(
        "DELETE FROM meters_gridnode WHERE id IN (SELECT id FROM meters_gridnode "
        "WHERE kind = 'service_point' ORDER BY id OFFSET %s)",
        [n_meters],
    )
    insert_select(
        DataConcentrator,
        {
            "serial": "'DC-' || t.code", "name": "t.name", "organisation_id": "t.organisation_id",
            "grid_node_id": "t.id", "latitude": "t.latitude", "longitude": "t.longitude",
        },
        "FROM meters_gridnode t WHERE t.kind = 'transformer' AND t.id %% 5 = 0",
    )  # fmt: skip
    insert_select(
        ConcentratorEndpoint,
        {"concentrator_id": "dc.id", "host": "'10.0.0.1'", "port": "4059"},
        "FROM meters_dataconcentrator dc",
    )  # fmt: skip
    statuses = "(ARRAY['active','active','active','active','active','active','active'," \
        "'active','installed','faulty'])[1 + (sp.id %% 10)]"  # fmt: skip
    insert_select(
        Meter,
        {
            "serial": "'M' || lpad(sp.id::text, 8, '0')", "meter_model_id": "%s",
            "status": statuses, "service_point_id": "sp.id",
            "organisation_id": "sp.organisation_id", "latitude": "sp.latitude",
            "longitude": "sp.longitude",
            "install_date": "date '2024-01-01' + (sp.id %% 700)::int",
        },
        "FROM meters_gridnode sp WHERE sp.kind = 'service_point'",
        [model.pk],
    )  # fmt: skip
    insert_select(
        MeterEndpoint,
        {
            "meter_id": "m.id", "host": "'10.1.0.1'", "port": "4059",
            "protocol": "CASE WHEN m.service_point_id %% 20 = 0 THEN 'iec62056_21' ELSE 'dlms' END",
        },
        "FROM meters_meter m",
    )  # fmt: skip
    insert_select(
        Customer,
        {
            "account_number": "'ACC-' || sp.id", "name": "'Customer ' || sp.id",
            "service_point_id": "sp.id", "organisation_id": "sp.organisation_id",
            "tariff_code": "'T1'",
        },
        "FROM meters_gridnode sp WHERE sp.kind = 'service_point'",
    )  # fmt: skip
    return user, model


def build_collection(now: datetime) -> None:
    """Comm status, today's run with a result per meter, a running job, open alarms."""
    from collection.models import JobRun, MeterReadResult, ReadJob
    from meters.alarms.models import Alarm, AlarmRule
    from meters.models import CommStatus

    insert_select(
        CommStatus,
        {
            "meter_id": "m.id",
            "last_attempt": "%s - interval '1 hour'",
            # 85 % read within the day, 7 % 1-3 days ago, 5 % older, 3 % never (unreachable).
            "last_success": "CASE WHEN m.id %% 100 < 85 THEN %s - random() * interval '20 hours' "
            "WHEN m.id %% 100 < 92 THEN %s - interval '1 day' - random() * interval '2 days' "
            "WHEN m.id %% 100 < 97 THEN %s - interval '4 days' - random() * interval '20 days' "
            "END",
            "consecutive_failures": "CASE WHEN m.id %% 100 >= 97 THEN 5 ELSE 0 END",
            "unreachable": "m.id %% 100 >= 97",
        },
        "FROM meters_meter m",
        [now, now, now, now],
    )  # fmt: skip
    from accounts.models import Organisation

    north = Organisation.objects.get(code="north")
    job = ReadJob.objects.create(name="Nightly", organisation=north)
    run = JobRun.objects.create(
        job=job, organisation=north, status="succeeded", started_at=now, finished_at=now
    )
    JobRun.objects.create(job=job, organisation=north, status="running", total=5000, done=1234)
    insert_select(
        MeterReadResult,
        {
            "run_id": "%s", "meter_id": "m.id",
            "status": "CASE WHEN m.id %% 100 < 95 THEN 'ok' ELSE 'failed' END",
            "attempts": "1", "finished_at": "%s - random() * interval '5 hours'",
        },
        "FROM meters_meter m WHERE m.status IN ('active', 'installed')",
        [run.pk, now],
    )  # fmt: skip
    rule = AlarmRule.objects.create(name="Tamper", organisation=north, kinds=["cover_open"])
    insert_select(
        Alarm,
        {
            "rule_id": "%s", "meter_id": "m.id", "organisation_id": "m.organisation_id",
            "service_point_id": "m.service_point_id", "kind": "'cover_open'",
            "severity": "(ARRAY[10, 20, 30, 40])[1 + m.id %% 4]", "state": "'raised'",
            "count": "1", "first_event_at": "%s", "last_event_at": "%s", "raised_at": "%s",
            "updated_at": "%s",
        },
        "FROM meters_meter m WHERE m.id %% 50 = 7",
        [rule.pk, now, now, now, now],
    )  # fmt: skip


def load_store(model, now: datetime, month_meters: int) -> tuple[int, int]:
    """Intervals (binary COPY, wide rows, 4 channels) and daily rollups; returns (rows, values)."""
    from django.db import connection, transaction

    from meters.models import Channel, Meter
    from meters.store import partitions

    day_end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_end - timedelta(days=30)
    partitions.ensure_for(month_start, day_end)
    meters = list(Meter.objects.order_by("pk").values_list("pk", flat=True))
    row = struct.Struct(">hiqiqiqiqiqiqiqih")
    header, trailer = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0), struct.pack(">h", -1)

    def stamps(start, n):
        first = (start - PG_EPOCH) // timedelta(microseconds=1)
        return [first + (k + 1) * QH_US for k in range(n)]

    day_ts, month_ts = stamps(day_end - timedelta(days=1), 96), stamps(month_start, 29 * 96)
    rows = 0

    def block(ids, ts):
        n = len(ts)
        k4 = [k % 4 for k in ts]
        out = []
        for m in ids:
            b = 10 + m % 90
            e = repeat(8)
            out.append(b"".join(map(
                row.pack, repeat(8), e, repeat(m), e, ts, e, repeat(0),
                e, [b + x for x in k4], e, [b + 1 + x for x in k4], e, [b // 3 + x for x in k4],
                e, [x for x in k4], repeat(2), repeat(0),
            )))  # fmt: skip
        return out, len(ids) * n

    cursor = connection.cursor()
    for ids, ts in [(meters, day_ts), (meters[:month_meters], month_ts)]:
        step = max(1, 200_000 // len(ts))
        for i in range(0, len(ids), step):
            parts, n = block(ids[i : i + step], ts)
            with transaction.atomic():
                pgbulk.copy_in(
                    cursor,
                    "COPY meters_intervalreading (meter_id, ts, q, v0, v1, v2, v3, grp) "
                    "FROM STDIN (FORMAT binary)",
                    header + b"".join(parts) + trailer,
                )
            rows += n
    import_channel = Channel.objects.get(meter_model=model, obis=PROFILE[0][0])
    sql(
        "INSERT INTO meters_dailyenergy (meter_id, channel_id, day, value, intervals, estimated) "
        "SELECT m.id, %s, d::date, 96 * (10 + m.id %% 90) + 144, 96, 0 FROM meters_meter m "
        "CROSS JOIN generate_series(%s::date, %s::date, interval '1 day') d",
        [import_channel.pk, month_start.date(), (day_end - timedelta(days=1)).date()],
    )
    sql("VACUUM ANALYZE")
    return rows, rows * 4


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 2 else samples[0]


def timed(client, url: str) -> tuple[float, object]:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, response


def measure(client, name: str, url: str, check, rounds: int, pairs: int) -> dict:
    """A (target) and B (/healthz) alternating; p95 per round, median of the rounds."""
    _, response = timed(client, url)
    check(response)
    timed(client, url)
    a_p95, b_p95, ratios = [], [], []
    for _ in range(rounds):
        a, b = [], []
        for _ in range(pairs):
            b.append(timed(client, "/healthz")[0])
            a.append(timed(client, url)[0])
        a_p95.append(p95(a))
        b_p95.append(p95(b))
        ratios.append(a_p95[-1] / b_p95[-1])
    value, baseline = statistics.median(a_p95), statistics.median(b_p95)
    emit(
        f"{name}_p95", value, "ms", baseline, statistics.median(ratios),
        url=url, rounds=rounds, pairs=pairs, target_ms=TARGET_MS, under_target=value < TARGET_MS,
    )  # fmt: skip
    return {"name": name, "p95": value, "baseline": baseline}


def run(quick: bool, browser: bool) -> None:
    from django.test import Client

    from meters.models import GridNode, Meter

    n_meters = 5_000 if quick else 100_000
    month_meters = 50 if quick else 1_050
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    user, model = build_fleet(n_meters)
    t_grid = time.perf_counter() - t0
    build_collection(now)
    t_coll = time.perf_counter() - t0 - t_grid
    rows, values = load_store(model, now, month_meters)
    load_s = time.perf_counter() - t0
    meters = Meter.objects.count()
    assert meters == n_meters, meters
    stored = scalar("SELECT count(*) FROM meters_intervalreading")
    assert stored == rows, (stored, rows)
    emit(
        "fleet_loaded", values, "values", meters=meters, interval_rows=rows,
        grid_nodes=GridNode.objects.count(), daily_rows=scalar(
            "SELECT count(*) FROM meters_dailyenergy"), grid_s=round(t_grid, 1),
        collection_s=round(t_coll, 1), load_s=round(load_s, 1), cpus=os.cpu_count(),
    )  # fmt: skip

    client = Client()
    client.force_login(user)
    rounds, pairs = (3, 6) if quick else (3, 15)
    feeder = GridNode.objects.filter(kind="feeder").order_by("pk").first()
    region = GridNode.objects.filter(kind="region").order_by("pk").first()
    month_meter = Meter.objects.order_by("pk").first()
    last_page = -(-n_meters // 50)
    day_end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    series_url = (
        f"/api/meters/{month_meter.pk}/series/?channels={PROFILE[0][0]}"
        f"&start={(day_end - timedelta(days=30)).isoformat()}&end={day_end.isoformat()}"
    ).replace("+00:00", "Z")
    fleet_box = "-3.5,50.0,0.5,53.0"

    def meters_shown(n):
        def check(response):
            shown = len(response.context["meters"])
            assert shown == n, f"{shown} meters, expected {n}"

        return check

    def home_ok(r):
        assert r.context["status"]["meters"]["total"] == n_meters

    def map_fleet_ok(r):
        data = r.json()
        assert data["mode"] == "cells" and data["total"] == n_meters, (data["mode"], data["total"])
        emit("map_fleet_cells", len(data["cells"]), "cells", bytes=len(r.content))

    def map_zoom_ok(r):
        data = r.json()
        assert data["total"] > 0

    def series_ok(r):
        data = r.json()
        assert data["channels"] and len(data["channels"][0]["timestamps"]) >= 29 * 24

    def grid_ok(r):
        assert r.context["roots"]

    def children_ok(r):
        assert r.json()["nodes"]

    targets = [
        ("home", "/", home_ok),
        ("meter_list", "/meters/", meters_shown(50)),
        ("meter_list_search", "/meters/?q=Customer+1234", lambda r: None),
        ("meter_list_filters", f"/meters/?status=active&read=over3d&node={region.pk}",
         meters_shown(50)),
        ("meter_list_node_sorted", f"/meters/?node={feeder.pk}&sort=-last_read", lambda r: None),
        ("meter_list_late_page", f"/meters/?page={last_page}", meters_shown(50)),
        ("meter_detail", f"/meters/{month_meter.serial}/", lambda r: None),
        ("series_month", series_url, series_ok),
        ("map_data_fleet", f"/map/data/?bbox={fleet_box}&zoom=7", map_fleet_ok),
        ("map_data_zoomed", f"/map/data/?bbox={feeder.longitude - Decimal_(0.02)},"
         f"{feeder.latitude - Decimal_(0.01)},{feeder.longitude + Decimal_(0.02)},"
         f"{feeder.latitude + Decimal_(0.01)}&zoom=15", map_zoom_ok),
        ("map_data_filtered", f"/map/data/?bbox={fleet_box}&zoom=7&status=faulty&read=today",
         lambda r: None),
        ("grid_tree", "/grid/", grid_ok),
        ("grid_branch", f"/grid/nodes/{region.pk}/children/", children_ok),
    ]  # fmt: skip
    results = [measure(client, name, url, check, rounds, pairs) for name, url, check in targets]
    print(f"\ndashboard ({meters:,} meters, {values:,} interval values, load {load_s:.0f} s, "
          f"{os.cpu_count()} CPUs); server p95, baseline /healthz:")  # fmt: skip
    for r in results:
        flag = "" if r["p95"] < TARGET_MS else "  OVER TARGET"
        print(f"  {r['name']:24s} {r['p95']:8.1f} ms  (baseline {r['baseline']:.1f} ms){flag}")
    if browser:
        browser_pan(user, quick)


def Decimal_(value: float):  # noqa: N802 - reads like the Decimal literal it is
    from decimal import Decimal

    return Decimal(str(value))


def browser_pan(user, quick: bool) -> None:
    """Open /map/ under uvicorn in headless Chromium; pan and zoom; longest task and frame."""
    import socket
    import threading

    import uvicorn
    from django.test import Client
    from playwright.sync_api import sync_playwright

    from amisite.asgi import application

    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        print(f"(no Chromium at {chromium}: browser figures skipped)")
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
            page = context.new_page()
            page.add_init_script("""
                window.__longest = 0; window.__frames = [];
                new PerformanceObserver(function (list) {
                  list.getEntries().forEach(function (e) {
                    window.__longest = Math.max(window.__longest, e.duration); });
                }).observe({type: "longtask", buffered: true});
            """)
            start = time.perf_counter()
            page.goto(base + "/map/")
            page.wait_for_function("window.amiMap && window.amiMap.loads > 0", timeout=60_000)
            first_ms = (time.perf_counter() - start) * 1000
            first = page.evaluate("window.amiMap.last")
            page.evaluate("window.__longest = 0")
            loads = page.evaluate("window.amiMap.loads")
            page.evaluate("""() => {
              window.__frames = []; let last = performance.now();
              (function tick(t) { window.__frames.push(t - last); last = t;
                if (window.__frames.length < 100000) requestAnimationFrame(tick); })(last);
            }""")
            moves = 12 if quick else 30
            for i in range(moves):
                dx, dy = ((i % 4) - 1.5) * 200, ((i % 3) - 1) * 150
                page.evaluate(f"window.amiMap.map.panBy([{dx}, {dy}], {{animate: true}}) && null")
                page.wait_for_timeout(250)
                if i % 6 == 5:
                    zoom = "zoomIn" if (i // 6) % 2 == 0 else "zoomOut"
                    page.evaluate(f"window.amiMap.map.{zoom}() && null")
                    page.wait_for_timeout(400)
            page.wait_for_timeout(800)
            longest = page.evaluate("window.__longest")
            frames = page.evaluate("window.__frames.slice(1)")
            loaded = page.evaluate("window.amiMap.loads") - loads
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    worst_frame = max(frames) if frames else 0
    emit(
        "map_pan_longest_task", longest, "ms", None, None, moves=moves, data_loads=loaded,
        first_view_ms=round(first_ms), first_view_cells=len(first["cells"]),
        first_view_points=len(first["points"]), first_view_total=first["total"],
        frames=len(frames), frame_p95_ms=round(p95(frames), 1) if len(frames) > 1 else None,
        worst_frame_ms=round(worst_frame, 1),
    )  # fmt: skip
    print(f"  map in Chromium: first view {first_ms:.0f} ms ({first['total']:,} meters as "
          f"{len(first['cells'])} cells); {moves} pans/zooms, {loaded} data loads: longest "
          f"task {longest:.0f} ms, worst frame {worst_frame:.0f} ms")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="5,000 meters: under a minute")
    p.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium map figures")
    args = p.parse_args()
    url = server_url()
    setup_django(url)
    try:
        run(args.quick, not args.no_browser)
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
