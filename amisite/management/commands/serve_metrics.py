"""Serve this machine's metrics for Prometheus on a host without a web process.

The Celery workers, beat and the push listener of a host count into
`PROMETHEUS_MULTIPROC_DIR`; this serves their sum on `--host:--port` (no authentication:
bind it to the monitoring network only). Web hosts need not run it: `/metrics` serves the same
plus the system-wide state gauges.
"""

from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError
from prometheus_client import CollectorRegistry, multiprocess, start_http_server


class Command(BaseCommand):
    help = "Serve this host's process metrics (PROMETHEUS_MULTIPROC_DIR) for Prometheus."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9808)
        parser.add_argument(
            "--seconds", type=float, default=0, help="stop after this long (0: run until killed)"
        )

    def handle(self, *args, host, port, seconds, **options):
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder or not os.path.isdir(folder):
            raise CommandError(
                "set PROMETHEUS_MULTIPROC_DIR to the folder this host's processes share"
            )
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        server, thread = start_http_server(port, addr=host, registry=registry)
        self.stdout.write(f"metrics of {folder} on http://{host}:{port}/metrics")
        try:
            deadline = time.monotonic() + seconds if seconds else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            thread.join(5)
