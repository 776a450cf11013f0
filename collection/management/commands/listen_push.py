"""`manage.py listen_push`: the long-running listener for meter pushes (alarms), in the protocol
of setting AMI_PUSH_PROTOCOL or ``--protocol`` (default dlms)."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from collection.protocols.push import DEFAULT_MAX_FRAME
from collection.protocols.registry import push_decoder, push_protocols
from collection.push.directory import DatabaseDirectory, close_connections, persist_rejections
from collection.push.health import checks
from collection.push.server import (
    CelerySink,
    HealthServer,
    PushServer,
    RejectionLog,
    raise_fd_limit,
)

log = logging.getLogger("collection.push")


class Command(BaseCommand):
    help = (
        "Listen for meter pushes (alarms) over TCP in one protocol and hand them to Celery "
        "(task collection.handle_push). Binds 127.0.0.1 unless told otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=4060)
        parser.add_argument(
            "--protocol",
            choices=push_protocols(),
            default=settings.AMI_PUSH_PROTOCOL,
            help="the driver whose push decoder is used (setting AMI_PUSH_PROTOCOL)",
        )
        parser.add_argument(
            "--interface", default=None, help="the protocol's framing (default: its first)"
        )
        parser.add_argument("--max-frame", type=int, default=DEFAULT_MAX_FRAME, help="bytes")
        parser.add_argument(
            "--idle-timeout", type=float, default=300.0, help="close silent connections (s)"
        )
        parser.add_argument(
            "--frame-timeout", type=float, default=30.0, help="close half-sent frames (s)"
        )
        parser.add_argument("--max-connections", type=int, default=20_000)
        parser.add_argument("--stats-interval", type=float, default=60.0)
        parser.add_argument(
            "--health-port",
            type=int,
            default=0,
            help="HTTP health check for the balancer on this port (0: none): 200 when pushes "
            "can be handed off, 503 when not (broker or database unreachable, stopping)",
        )
        parser.add_argument(
            "--health-host", default=None, help="address of the health check (default: --host)"
        )
        parser.add_argument(
            "--drain-grace",
            type=float,
            default=3.0,
            help="on SIGTERM, seconds the health check says 'draining' before the listener "
            "stops accepting (longer than the balancer's fall x inter; 0 without --health-port: "
            "no balancer is asking)",
        )
        parser.add_argument(
            "--drain-timeout",
            type=float,
            default=30.0,
            help="on SIGTERM, seconds at most to let open connections finish and hand off",
        )

    def handle(self, *args, **opts):
        decoder = push_decoder(opts["protocol"])
        opts["interface"] = opts["interface"] or decoder.interfaces[0]
        if opts["interface"] not in decoder.interfaces:
            raise CommandError(
                f"--interface must be one of {', '.join(decoder.interfaces)} for {opts['protocol']}"
            )
        raise_fd_limit(opts["max_connections"] + 256)
        asyncio.run(self._serve(opts))

    async def _serve(self, opts) -> None:
        directory = DatabaseDirectory()
        preloaded = await directory.preload()
        sink = CelerySink()
        server = PushServer(
            directory,
            sink,
            protocol=opts["protocol"],
            interface=opts["interface"],
            max_frame=opts["max_frame"],
            idle_timeout=opts["idle_timeout"],
            frame_timeout=opts["frame_timeout"],
            max_connections=opts["max_connections"],
            rejections=RejectionLog(persist=persist_rejections),
        )
        host, port = await server.start(opts["host"], opts["port"])
        health = None
        if opts["health_port"]:
            health = HealthServer(
                checks(server, sink),
                stats=lambda: dict(server.stats) | {"open": len(server.conns)},
            )
            await health.start(opts["health_host"] or opts["host"], opts["health_port"])
        self.stdout.write(
            f"push listener on {host}:{port} ({opts['protocol']}, {opts['interface']}), "
            f"{preloaded} meters with a system title preloaded",
            ending="\n",
        )
        self.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), opts["stats_interval"])
                except TimeoutError:
                    log.info("push listener: %d open, %s", len(server.conns), dict(server.stats))
            log.info("push listener draining (%d open)", len(server.conns))
            grace = opts["drain_grace"] if health is not None else 0.0
            await server.shutdown(grace, opts["drain_timeout"])
        finally:
            await server.close()
            # Everything taken is handed off before the process ends (bounded).
            await asyncio.to_thread(sink.close, opts["drain_timeout"])
            if health is not None:
                await health.close()
            await close_connections()
            log.info("push listener stopped: %s", dict(server.stats))
