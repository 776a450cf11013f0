"""Observability: /metrics (who may scrape it, what it counts), /readyz, request ids in logs,
JSON logs, and one host's processes' metrics added up by `serve_metrics`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.models import Organisation
from amisite import observability
from amisite.webgate import RequestGate
from collection import actions
from collection.commands.models import MeterCommand
from collection.models import JobRun, ReadJob
from collection.push_tasks import handle_push
from collection.simulators.dlms_fleet import make_meters
from meters.models import Meter
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import register_fleet, simulated_model

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-for-tests-0123456789"


def sample(name: str, labels: dict | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def scrape(client: Client, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get("/metrics", **headers)


@pytest.mark.django_db
@override_settings(AMI_METRICS_TOKEN=TOKEN)
def test_metrics_answer_the_scraper_and_superusers_only(world):
    assert scrape(Client(), token=None).status_code == 403
    assert scrape(Client(), token="wrong-token-wrong-token").status_code == 403
    operator = Client()
    operator.force_login(world.admin_a)  # an organisation's administrator is not enough
    assert scrape(operator, token=None).status_code == 403
    root = Client()
    root.force_login(world.superuser)
    assert scrape(root, token=None).status_code == 200
    answer = scrape(Client())
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    text = answer.content.decode()
    for name in (
        "ami_http_request_duration_seconds_bucket",
        "ami_queue_depth",
        "ami_command_backlog",
        "ami_read_runs_open",
        "ami_ingest_lag_seconds",
    ):
        assert name in text, name


@pytest.mark.django_db
@override_settings(AMI_METRICS_TOKEN="")
def test_without_a_token_configured_no_bearer_gets_in():
    assert scrape(Client(), token="").status_code == 403
    assert scrape(Client(), token="anything-at-all-here").status_code == 403


@pytest.mark.django_db
def test_requests_are_counted_by_route_and_status_class():
    before = sample("ami_http_responses_total", {"route": "healthz", "status": "2xx"})
    timed = sample("ami_http_request_duration_seconds_count", {"route": "healthz", "method": "GET"})
    for _ in range(3):
        assert Client().get("/healthz").status_code == 200
    assert sample("ami_http_responses_total", {"route": "healthz", "status": "2xx"}) == before + 3
    assert (
        sample("ami_http_request_duration_seconds_count", {"route": "healthz", "method": "GET"})
        == timed + 3
    )
    # A path that matches no route is one label, not one series per path.
    missing = sample("ami_http_responses_total", {"route": "unmatched", "status": "4xx"})
    Client().get("/no/such/page/12345")
    Client().get("/no/such/page/67890")
    assert (
        sample("ami_http_responses_total", {"route": "unmatched", "status": "4xx"}) == missing + 2
    )


def _through_the_gate(path: str) -> dict:
    """GET `path` from Django's ASGI handler behind the request gate, as uvicorn would."""
    app = RequestGate(ASGIHandler(), limit=1, queue_timeout=5)
    sent, requests = [], [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected (Django listens for it)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "GET", "headers": [], "query_string": b"",
             "server": ("testserver", 80), "client": ("127.0.0.1", 5000)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    return {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}


@pytest.mark.django_db(transaction=True)
def test_server_timing_tells_the_wait_for_a_slot_from_the_time_in_django():
    waited = sample("ami_http_queue_seconds_count")
    assert "server-timing" not in _through_the_gate("/login/")  # off unless asked for
    assert sample("ami_http_queue_seconds_count") == waited + 1  # counted either way
    with override_settings(AMI_SERVER_TIMING=True):
        header = _through_the_gate("/login/")["server-timing"]
    parts = {}
    for part in header.split(", "):
        name, _, dur = part.partition(";dur=")
        parts[name] = float(dur)
    assert list(parts) == ["gate", "start", "app", "cpu", "db"]
    assert all(ms >= 0 for ms in parts.values())
    assert parts["app"] > 0
    # The thread's CPU and the SQL statements' time are parts of its time in Django.
    assert parts["cpu"] <= parts["app"] + 1
    assert parts["db"] <= parts["app"]
    assert sample("ami_http_queue_seconds_count") == waited + 2


@pytest.mark.django_db
@override_settings(AMI_METRICS_TOKEN=TOKEN)
def test_state_gauges_count_the_command_backlog_and_open_runs(world):
    meter = world.grid_a.meters[0]
    MeterCommand.objects.create(
        organisation=world.org_a,
        meter=meter,
        kind="disconnect",
        reason="test",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    job = ReadJob.objects.create(name="j", organisation=world.org_a, items=["registers"])
    JobRun.objects.create(job=job, organisation=world.org_a, status="running")
    text = scrape(Client()).content.decode()
    assert 'ami_command_backlog{state="queued"} 1.0' in text
    assert 'ami_command_backlog{state="sent"} 0.0' in text
    assert "ami_read_runs_open 1.0" in text
    lag = [line for line in text.splitlines() if line.startswith("ami_ingest_lag_seconds ")]
    assert lag and float(lag[0].split()[1]) >= 0


@pytest.mark.django_db
def test_request_id_is_echoed_kept_when_plain_and_in_the_log_lines(caplog):
    kept = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c21")
    assert kept["X-Request-ID"] == "lb-7f3a9c21"
    made = Client().get("/healthz", HTTP_X_REQUEST_ID="evil\r\nheader value")
    assert made["X-Request-ID"] != "evil\r\nheader value"
    assert len(made["X-Request-ID"]) == 32
    assert made["X-Request-ID"] != Client().get("/healthz")["X-Request-ID"]
    # Django logs a refused request after the view returned: the line still carries the id.
    with caplog.at_level(logging.WARNING, logger="django.request"):
        refused = Client().get("/metrics", HTTP_X_REQUEST_ID="trace-0001-refused")
    assert refused.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and records[-1].request_id == "trace-0001-refused"


def test_json_log_lines_carry_level_logger_and_ids():
    spec = dict(settings.LOGGING["formatters"]["json"])
    factory = spec.pop("()")
    module, _, name = factory.rpartition(".")
    formatter = getattr(__import__(module, fromlist=[name]), name)(**spec)
    observability.install_log_ids()
    token = observability.request_id.set("req-123456789")
    try:
        record = logging.getLogger("ami.test").makeRecord(
            "ami.test", logging.WARNING, __file__, 1, "meter %s silent", ("M1",), None
        )
    finally:
        observability.request_id.reset(token)
    line = json.loads(formatter.format(record))
    assert line["level"] == "WARNING"
    assert line["logger"] == "ami.test"
    assert line["message"] == "meter M1 silent"
    assert line["request_id"] == "req-123456789"
    assert line["task_id"] == ""
    assert "time" in line


@pytest.mark.django_db
def test_readiness_names_what_is_missing():
    ok = Client().get("/readyz")
    assert ok.status_code == 200, ok.content
    assert ok.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
    }
    port = _closed_port()
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        down = Client().get("/readyz")
    assert down.status_code == 503
    assert down["Retry-After"] == "5"
    body = down.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_read_batches_count_meters_read_and_failed_and_tasks(eager_celery):
    org = Organisation.objects.create(name="Obs", code="obs")
    model = simulated_model(org)
    sims = make_meters(4)
    ok_before = sample("ami_meter_reads_total", {"outcome": "ok"})
    failed_before = sample("ami_meter_reads_total", {"outcome": "failed"})
    values_before = sample("ami_values_ingested_total")
    batches_before = sample(
        "ami_tasks_total", {"task": "collection.read_batch", "state": "SUCCESS"}
    )
    with fleet_thread(sims, interface="wrapper") as fleet:
        meters = register_fleet(fleet, sims, org, model)
        dead = Meter.objects.get(pk=meters[-1].pk)
        dead.port = _closed_port()  # nothing answers there: one failed read
        dead.save()
        job = ReadJob.objects.create(
            name="obs", organisation=org, items=["registers"], batch_size=2, retries=0
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
    assert (run.succeeded, run.failed) == (3, 1)
    assert sample("ami_meter_reads_total", {"outcome": "ok"}) == ok_before + 3
    assert sample("ami_meter_reads_total", {"outcome": "failed"}) == failed_before + 1
    assert sample("ami_values_ingested_total") > values_before
    assert (
        sample("ami_tasks_total", {"task": "collection.read_batch", "state": "SUCCESS"})
        == batches_before + 2
    )


@pytest.mark.django_db
def test_push_latency_is_observed_from_arrival_to_stored(world):
    now = "2026-06-01T12:30:00+00:00"
    events = [{"ts": now, "code": 2, "log": "0-0:97.98.0*255", "data": [5]}]
    count = sample("ami_push_store_latency_seconds_count")
    total = sample("ami_push_store_latency_seconds_sum")
    handle_push.run(world.grid_a.meters[0].pk, events, received=time.time() - 2.0)
    assert sample("ami_push_store_latency_seconds_count") == count + 1
    assert 2.0 <= sample("ami_push_store_latency_seconds_sum") - total < 30
    handle_push.run(world.grid_a.meters[0].pk, events)  # no arrival time: not observed
    assert sample("ami_push_store_latency_seconds_count") == count + 1


def test_serve_metrics_adds_up_the_processes_of_a_host(tmp_path):
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "from prometheus_client import Counter; "
        "Counter('ami_meter_reads_total', 'x', ['outcome']).labels('ok').inc({n})"
    )
    for n in (3, 4):  # two worker processes, each counting its own
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True)
    port = _closed_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve_metrics", "--port", str(port), "--seconds", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "metrics of" in server.stdout.readline()
        body = _get_when_up(f"http://127.0.0.1:{port}/metrics")
        assert 'ami_meter_reads_total{outcome="ok"} 7.0' in body
    finally:
        server.terminate()
        server.wait(10)


def test_serve_metrics_refuses_without_the_shared_folder():
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "manage.py", "serve_metrics", "--seconds", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_when_up(url: str, seconds: float = 20) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
