"""What the running system tells its operators: Prometheus metrics, readiness, request and
task ids in every log line.

Metrics come from two places (docs/operations.md, "Monitoring"):

- **Events, counted where they happen**: web requests (route, method, status class, seconds),
  Celery tasks (name, outcome, seconds), meters read (ok / failed) and values stored by the read
  batches, push notifications from arrival to the store. Each process counts its own; with
  `PROMETHEUS_MULTIPROC_DIR` set (the launcher sets it, a production host sets one per host),
  all the processes of a host write their counts there and `/metrics` (or `manage.py
  serve_metrics` on a host without a web process) adds them up.
- **State, read when scraped** (`ClusterCollector`): queue depths from the broker, the command
  backlog, open read runs and how long the oldest has waited. Every web instance answers the
  same figures for the whole system; aggregate them with `max()`, not `sum()`.

`/metrics` shows counts for every organisation, so it is not a page: it answers a scraper that
sends `Authorization: Bearer $AMI_METRICS_TOKEN`, or a signed-in superuser, and nobody else.
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import logging
import os
import re
import time
import uuid

import redis
from celery import current_app
from celery.signals import task_postrun, task_prerun
from django.apps import apps
from django.conf import settings
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from collection.queues import fleet_queues

from .dbrouter import REPLICA, replica_configured
from .webgate import GATE_KEY

logger = logging.getLogger("amisite.observability")

# --- ids in every log line -------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")
# A caller's X-Request-ID is kept when it is a plain token (a proxy's or a client's id);
# anything else is replaced, so a log line never carries what a client typed.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

_base_record_factory = logging.getLogRecordFactory()


def _record_with_ids(*args, **kwargs) -> logging.LogRecord:
    record = _base_record_factory(*args, **kwargs)
    record.request_id = request_id.get()
    record.task_id = task_id.get()
    return record


def install_log_ids() -> None:
    """Every log record carries `request_id` and `task_id` (empty outside a request/task)."""
    if logging.getLogRecordFactory() is not _record_with_ids:
        logging.setLogRecordFactory(_record_with_ids)


# --- event metrics ---------------------------------------------------------------------------

# Web pages answer in tens of milliseconds; the tail that matters is up to a few seconds.
_WEB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_TASK_BUCKETS = (0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)
_PUSH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)

HTTP_SECONDS = Histogram(
    "ami_http_request_duration_seconds",
    "Time from the request entering Django to the response, by route (URL name).",
    ["route", "method"],
    buckets=_WEB_BUCKETS,
)
HTTP_QUEUE_SECONDS = Histogram(
    "ami_http_queue_seconds",
    "Time a request waited for one of its web process's AMI_WEB_THREADS slots before Django.",
    buckets=_WEB_BUCKETS,
)
HTTP_RESPONSES = Counter(
    "ami_http_responses_total", "Responses by route and status class.", ["route", "status"]
)
TASK_SECONDS = Histogram(
    "ami_task_duration_seconds",
    "Celery task run time by task name.",
    ["task"],
    buckets=_TASK_BUCKETS,
)
TASKS = Counter("ami_tasks_total", "Celery tasks run, by name and final state.", ["task", "state"])
METER_READS = Counter(
    "ami_meter_reads_total", "Meters read by collection runs, by outcome.", ["outcome"]
)
VALUES_INGESTED = Counter(
    "ami_values_ingested_total", "Values collection runs handed to the store (with a channel)."
)
PUSH_SECONDS = Histogram(
    "ami_push_store_latency_seconds",
    "Push notifications: seconds from arrival at the listener to their events being stored.",
    buckets=_PUSH_BUCKETS,
)

# The task whose result counts the meters of one batch (collection.actions.process_batch).
READ_BATCH_TASK = "collection.read_batch"


def observe_push_stored(received: float) -> None:
    """Called once a push's events are committed; `received`: the listener's wall clock at
    arrival (another process, maybe another host: clocks are NTP-synchronised)."""
    PUSH_SECONDS.observe(max(0.0, time.time() - received))


def _route(request) -> str:
    """A bounded label: the URL's name (never the raw path: ids would explode the series)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched"
    return match.view_name or "unnamed"


class _QueryTimer:
    """A `connection.execute_wrapper` adding up the time of a request's SQL statements."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


class RequestObservabilityMiddleware:
    """Gives each request an id (X-Request-ID in and out, in every log line) and times it.

    Under ASGI the time a request waited for a slot (`amisite.webgate`) is counted apart
    (`ami_http_queue_seconds`). With `AMI_SERVER_TIMING` on, the answer says where its time
    went in a `Server-Timing` header (W3C; browsers' developer tools show it), in ms:
    `gate` waiting for a slot, `start` from the slot to this middleware (a thread for the
    request, the request built), `app` in Django, `cpu` the CPU its thread used of that and
    `db` its SQL statements' time (the rest of `app` waited: for a pooled connection, Redis,
    Python's interpreter lock or a CPU).
    Off by default: it tells anyone how long the server worked on their request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        rid = supplied if _CLIENT_ID.fullmatch(supplied) else uuid.uuid4().hex
        # Not reset afterwards: Django logs a 4xx/5xx after the middleware returned, and that
        # line must carry the id too. Each request sets its own before anything else runs.
        request_id.set(rid)
        started, cpu_started = time.perf_counter(), time.thread_time()
        if settings.AMI_SERVER_TIMING:
            queries = _QueryTimer()
            with contextlib.ExitStack() as stack:
                for conn in connections.all():
                    stack.enter_context(conn.execute_wrapper(queries))
                response = self.get_response(request)
        else:
            queries, response = None, self.get_response(request)
        elapsed = time.perf_counter() - started
        route = _route(request)
        HTTP_SECONDS.labels(route, request.method).observe(elapsed)
        HTTP_RESPONSES.labels(route, f"{response.status_code // 100}xx").inc()
        gate = getattr(request, "scope", {}).get(GATE_KEY)  # ASGI, through the gate
        if gate is not None:
            HTTP_QUEUE_SECONDS.observe(gate[1] - gate[0])
        if settings.AMI_SERVER_TIMING:
            timings = (
                [] if gate is None else [("gate", gate[1] - gate[0]), ("start", started - gate[1])]
            )
            timings += [("app", elapsed), ("cpu", time.thread_time() - cpu_started),
                        ("db", queries.seconds)]  # fmt: skip
            response["Server-Timing"] = ", ".join(f"{n};dur={s * 1000:.1f}" for n, s in timings)
        response["X-Request-ID"] = rid
        return response


_task_started: dict[str, float] = {}


@task_prerun.connect
def _task_starts(task_id=None, task=None, **_kwargs):
    globals()["task_id"].set(task_id or "")
    if task_id:
        _task_started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_ends(task_id=None, task=None, retval=None, state=None, **_kwargs):
    name = getattr(task, "name", "unknown")
    started = _task_started.pop(task_id, None) if task_id else None
    if started is not None:
        TASK_SECONDS.labels(name).observe(time.perf_counter() - started)
    TASKS.labels(name, state or "UNKNOWN").inc()
    if name == READ_BATCH_TASK and state == "SUCCESS" and isinstance(retval, dict):
        read, ok = int(retval.get("read", 0)), int(retval.get("ok", 0))
        METER_READS.labels("ok").inc(ok)
        METER_READS.labels("failed").inc(max(0, read - ok))
        VALUES_INGESTED.inc(int(retval.get("values", 0)))
    globals()["task_id"].set("")


# --- state metrics, read when scraped --------------------------------------------------------


class ClusterCollector:
    """System-wide state from the database and the broker, computed per scrape (a few indexed
    counts; no scan of the readings)."""

    def __init__(self, queues=None):
        self.queues = queues  # None: every queue there is (known_queues), asked per scrape

    def collect(self):
        depth = GaugeMetricFamily(
            "ami_queue_depth", "Tasks waiting in the broker, by queue.", labels=["queue"]
        )
        for queue, count in _queue_depths(self.queues).items():
            depth.add_metric([queue], count)
        yield depth

        command = apps.get_model("collection", "MeterCommand")
        backlog = GaugeMetricFamily(
            "ami_command_backlog", "Meter commands not yet finished, by state.", labels=["state"]
        )
        counts = dict(
            command.objects.filter(state__in=("queued", "sent"))
            .order_by()
            .values("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )
        for state in ("queued", "sent"):
            backlog.add_metric([state], counts.get(state, 0))
        yield backlog

        run = apps.get_model("collection", "JobRun")
        open_runs = run.objects.filter(status__in=("queued", "running"))
        runs = GaugeMetricFamily("ami_read_runs_open", "Read runs queued or running.")
        runs.add_metric([], open_runs.count())
        yield runs
        oldest = open_runs.order_by("created_at").values_list("created_at", flat=True).first()
        lag = GaugeMetricFamily(
            "ami_ingest_lag_seconds",
            "How long the oldest read run not yet finished has waited (0 when none is open).",
        )
        lag.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
        yield lag

        if replica_configured():
            behind = GaugeMetricFamily(
                "ami_replica_lag_seconds",
                "How far the read replica's last replayed transaction is behind now.",
            )
            with connections[REPLICA].cursor() as cursor:
                cursor.execute(
                    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()),"
                    " 0)"
                )
                behind.add_metric([], float(cursor.fetchone()[0]))
            yield behind


def configured_queues() -> set[str]:
    """Every queue the configuration names: the default queue, the task routes, the queues
    tasks declare, the read queues of AMI_COLLECT_ROUTE_BY (per region and/or protocol,
    `collection.queues.fleet_queues`) and this host's AMI_WORKER_QUEUES."""
    names = {current_app.conf.task_default_queue or "default", "collect"}
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(str(route["queue"]))
    for task in list(current_app.tasks.values()):
        queue = getattr(task, "queue", None)
        if isinstance(queue, str) and queue:
            names.add(queue)
    names |= {q.strip() for q in os.environ.get("AMI_WORKER_QUEUES", "").split(",") if q.strip()}
    try:
        names |= set(fleet_queues())
    except Exception as exc:  # noqa: BLE001 - a bad AMI_COLLECT_ROUTE_BY must not break a scrape
        logger.warning("metrics: read queues not listed: %s", exc)
    return names


def _broker_queues(channel) -> set[str]:
    """Queues the broker itself knows. Redis: kombu records every queue declared (by a worker
    consuming it or a task sent to it) as a binding; other brokers: none listed here."""
    prefix = getattr(channel, "keyprefix_queue", None)
    client = getattr(channel, "client", None)
    if not prefix or client is None:
        return set()
    sep = channel.sep
    names = set()
    for key in client.scan_iter(match=prefix % "*", count=500):
        for member in client.smembers(key):
            text = member.decode() if isinstance(member, bytes) else member
            queue = text.split(sep)[-1]
            if queue and not queue.endswith(".pidbox") and not queue.startswith("celeryev."):
                names.add(queue)
    return names


def _queue_depths(queues=None) -> dict[str, int]:
    """Messages waiting per queue, asked of the broker through kombu (Redis or AMQP alike);
    ``queues`` None: every configured queue and every queue the broker knows."""
    depths: dict[str, int] = {}
    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            names = set(queues) if queues is not None else configured_queues()
            if queues is None:
                try:
                    names |= _broker_queues(channel)
                except Exception as exc:  # noqa: BLE001 - the configured ones still count
                    logger.warning("metrics: broker's queues not listed: %s", exc)
            for queue in sorted(names):
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except Exception:  # noqa: BLE001 - a queue never declared yet holds nothing
                    depths[queue] = 0
    except Exception as exc:  # noqa: BLE001 - a broker outage must not break the scrape
        logger.warning("metrics: broker unreachable for queue depths: %s", exc)
    return depths


_cluster = CollectorRegistry(auto_describe=False)
_cluster.register(ClusterCollector())


def exposition(*, with_cluster: bool = True) -> bytes:
    """The metrics text: this host's processes (multiprocess) or this process, plus state."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        events = CollectorRegistry()
        multiprocess.MultiProcessCollector(events)
        body = generate_latest(events)
    else:
        body = generate_latest(REGISTRY)
    if with_cluster:
        body += generate_latest(_cluster)
    return body


def _authorised(request) -> bool:
    token = getattr(settings, "AMI_METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_superuser)


def metrics_view(request):
    """Prometheus text exposition for a scraper with the token, or a superuser."""
    if not _authorised(request):
        return JsonResponse({"detail": "metrics need the scraper's token"}, status=403)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


# --- readiness -------------------------------------------------------------------------------

_migrations_ok = False


def readiness() -> tuple[bool, dict[str, str]]:
    """Whether this instance should get traffic: database, migrations, Redis: "ok" or why not."""
    global _migrations_ok
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if checks["database"] == "ok" and not _migrations_ok:
        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except Exception as exc:  # noqa: BLE001
            checks["migrations"] = f"unknown: {type(exc).__name__}"
        else:
            _migrations_ok = not plan
            checks["migrations"] = "ok" if not plan else f"{len(plan)} not applied"
    elif _migrations_ok:
        checks["migrations"] = "ok"
    checks["redis"] = _redis_check()
    return all(value == "ok" for value in checks.values()), checks


def _redis_check() -> str:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "ok"  # the embedded default without Redis: nothing to wait for
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"unreachable: {type(exc).__name__}"
    return "ok"
