"""Push listener throughput: notifications per CPU second of the listener process.

Prints JSON lines ``{"bench": "push_listener", "metric", "value", "unit", "baseline",
"ratio"}`` and a summary:

* ``notifications_per_cpu_s``: ciphered alarm pushes (general-glo-ciphering, SC 0x30, built by
  the simulator's ``build_push_apdu``) accepted per CPU second of the listener process, with
  ``--meters`` connections held open from a separate (client) process. The listener does all
  of its work: WRAPPER splitting, envelope, sender lookup (a static in-memory directory, as
  after ``preload()``), GCM tag check, replay check, notification decoding, events. The
  Celery hand-off is replaced by an in-process counter (publishing to a broker is measured
  elsewhere); the benchmark asserts every push was accepted and none rejected.
* baseline: a bare asyncio server (Protocol, same connections, same frames) that only splits
  the WRAPPER frames and counts them. Runs alternate A B A B; the median of the pairs counts.

    .venv/bin/python bench/push_listener.py [--quick] [--meters N] [--pushes N] [--pairs N]

Full configuration: 10,000 connections, 200,000 pushes per run, 3 pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collection.push.senders import Sender, StaticDirectory  # noqa: E402
from collection.push.server import CounterSink, PushServer, raise_fd_limit  # noqa: E402
from collection.simulators.dlms_fleet import (  # noqa: E402
    MeterState,
    build_push_apdu,
    make_meters,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FIRST_SERIAL = 92000001


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------ server side (subprocess)


class _Baseline(asyncio.Protocol):
    count = 0

    def __init__(self) -> None:
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        while len(buf) - pos >= 8:
            (length,) = struct.unpack_from(">H", buf, pos + 6)
            if len(buf) - pos < 8 + length:
                break
            pos += 8 + length
            _Baseline.count += 1
        del buf[:pos]


async def _serve(kind: str, meters: int) -> None:
    raise_fd_limit(meters + 512)
    loop = asyncio.get_running_loop()
    if kind == "listener":
        sims = make_meters(meters, first_serial=FIRST_SERIAL)
        directory = StaticDirectory(
            [
                Sender(
                    i + 1,
                    s.serial,
                    system_title=s.system_title,
                    block_key=s.block_key,
                    auth_key=s.auth_key,
                )
                for i, s in enumerate(sims)
            ]
        )
        sink = CounterSink()
        server = PushServer(directory, sink, idle_timeout=600, max_connections=meters + 100)
        host, port = await server.start("127.0.0.1", 0)

        def counts():
            return server.stats["accepted"], server.stats["rejected"], len(server.conns)
    else:
        srv = await loop.create_server(_Baseline, "127.0.0.1", 0, backlog=4096)
        host, port = srv.sockets[0].getsockname()[:2]

        def counts():
            return _Baseline.count, 0, 0

    print(json.dumps({"port": port}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = line.decode().strip()
        done, rejected, conns = counts()
        out = {"cpu": _cpu(), "wall": time.monotonic(), "done": done, "rejected": rejected}
        out["conns"] = conns
        print(json.dumps(out), flush=True)
        if cmd == "quit":
            break


# ------------------------------------------------------------------ client side


def _frames(meters: int, pushes: int) -> list[tuple[int, bytes]]:
    """(connection index, WRAPPER frame): round robin over meters, counters increasing."""
    sims = make_meters(meters, first_serial=FIRST_SERIAL)
    states = [MeterState() for _ in sims]
    out = []
    for n in range(pushes):
        i = n % meters
        apdu = build_push_apdu(sims[i], states[i], NOW, alarm=1 << (n % 32), ciphered=True)
        out.append((i, struct.pack(">HHHH", 1, 1, 1, len(apdu)) + apdu))
    return out


class _Server:
    def __init__(self, kind: str, meters: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--meters", str(meters)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = json.loads(self.proc.stdout.readline())["port"]

    def ask(self, cmd: str = "stats") -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        try:
            self.ask("quit")
        finally:
            self.proc.wait(10)


async def _run(kind: str, meters: int, frames: list[tuple[int, bytes]]) -> dict:
    server = _Server(kind, meters)
    writers = []
    try:
        for start in range(0, meters, 500):  # connect in waves the backlog can take
            batch = await asyncio.gather(
                *(
                    asyncio.open_connection("127.0.0.1", server.port)
                    for _ in range(start, min(meters, start + 500))
                )
            )
            writers += [w for _r, w in batch]
        before = server.ask()
        for n, (i, frame) in enumerate(frames):
            writers[i].write(frame)
            if n % 2000 == 1999:
                await asyncio.sleep(0)  # let the transports flush
        await asyncio.gather(*(w.drain() for w in writers))
        deadline = time.monotonic() + 300
        while True:
            after = server.ask()
            if after["done"] + after["rejected"] >= len(frames) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        for w in writers:
            w.close()
    finally:
        server.close()
    assert after["rejected"] == 0, f"{kind}: {after['rejected']} rejected"
    assert after["done"] == len(frames), f"{kind}: {after['done']} of {len(frames)} accepted"
    cpu = after["cpu"] - before["cpu"]
    return {
        "rate": len(frames) / cpu,
        "cpu": cpu,
        "wall": after["wall"] - before["wall"],
        "conns": before["conns"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 connections, < 1 minute")
    p.add_argument("--meters", type=int, default=None)
    p.add_argument("--pushes", type=int, default=None)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--serve", choices=("listener", "baseline"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    meters = args.meters or (2000 if args.quick else 10_000)
    if args.serve:
        asyncio.run(_serve(args.serve, meters))
        return 0
    pushes = args.pushes or (20_000 if args.quick else 200_000)
    limit = raise_fd_limit(meters + 512)
    if limit < meters + 64:
        meters = limit - 64
        print(f"open-files limit {limit}: using {meters} connections", file=sys.stderr)
    t0 = time.monotonic()
    frames = _frames(meters, pushes)
    build_s = time.monotonic() - t0
    ours, base = [], []
    for _ in range(args.pairs):
        ours.append(asyncio.run(_run("listener", meters, frames)))
        base.append(asyncio.run(_run("baseline", meters, frames)))
    rate = statistics.median(r["rate"] for r in ours)
    base_rate = statistics.median(r["rate"] for r in base)
    ratio = statistics.median(b["rate"] / a["rate"] for a, b in zip(ours, base, strict=True))
    line = {
        "bench": "push_listener",
        "metric": "notifications_per_cpu_s",
        "value": round(rate),
        "unit": "notifications/s (listener CPU)",
        "baseline": round(base_rate),
        "ratio": round(1 / ratio, 4),
    }
    print(json.dumps(line))
    us = 1e6 / rate
    print(
        f"# {meters} connections held by the listener ({ours[0]['conns']} seen), {pushes} "
        f"ciphered pushes per run, {args.pairs} pairs; listener {round(rate)} notifications "
        f"per CPU second ({us:.1f} us each), bare asyncio server {round(base_rate)}/s "
        f"(ratio {1 / ratio:.3f}); wall per run {statistics.median(r['wall'] for r in ours):.2f}"
        f" s; frames built by the client in {build_s:.1f} s; pid {os.getpid()}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
