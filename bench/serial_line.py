"""Benchmark: meters per minute over one 9,600-baud serial line vs the line's physical limit.

Usage: ``.venv/bin/python bench/serial_line.py [--quick] [--meters N] [--rounds N]``

One serial bus (a pseudo-terminal) carries N IEC 62056-21 meters (mode C: sign-on at 300
baud, the baud switch in place, the readout at 9,600). The head-end reads them through the
job path's reader (`collection.reader.read_batch`: the line's meters take turns, one session
at a time) with the registry's IEC 62056-21 driver, items clock + registers.

A pty moves bytes at once, so the simulator's side of the line is paced as a real line
would be: every character takes 10 bits at the line's current rate, in both directions
(300 baud from each sign-on up to the option select, 9,600 after it). The same pacing
counts the line-seconds the bytes need: the physical limit is
``60 / (line-seconds per read)`` meters per minute, the bytes to move over the line rate,
from this run's own traffic (the same-run baseline). The figure is the head-end's meters
per minute over that limit (target >= 0.8). What the limit does not hold: the reaction
time the standard makes each side wait before it answers (200 ms, or 20 ms when the meter's
identification says so) and the driver's own time.

Output: one JSON line per round, then a readable summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")

import django  # noqa: E402

django.setup()  # the reader's targets module names the registry's models

from collection.protocols import registry  # noqa: E402
from collection.protocols.driver import Endpoint  # noqa: E402
from collection.protocols.iec62056_21 import codec  # noqa: E402
from collection.reader import ReadPlan, read_batch  # noqa: E402
from collection.simulators.iec62056_21.server import Iec21Fleet, make_meters  # noqa: E402
from collection.simulators.pty import serve_on_pty  # noqa: E402
from collection.targets import MeterTarget  # noqa: E402

BAUD = 9600
SIGN_ON_BAUD = 300
BITS = 10  # 7E1: start, 7 data, parity, stop
REGISTERS = ("1-0:1.8.0*255", "1-0:2.8.0*255", "1-0:3.8.0*255", "1-0:4.8.0*255")


class PacedLine:
    """Both directions of one half-duplex line, each character 10 bits at the current rate;
    `line_s` adds up the time the bytes need on the wire."""

    def __init__(self) -> None:
        self.rate = SIGN_ON_BAUD
        self.line_s = 0.0
        self.bytes = 0

    async def carry(self, count: int) -> None:
        seconds = count * BITS / self.rate
        self.line_s += seconds
        self.bytes += count
        await asyncio.sleep(seconds)


class PacedReader:
    """What the meter hears: a sign-on drops the line to 300 baud, the option select (the
    last message at 300) raises it to the line's rate once it has been carried."""

    def __init__(self, reader: asyncio.StreamReader, line: PacedLine) -> None:
        self._reader, self._line = reader, line

    async def _heard(self, data: bytes) -> bytes:
        if data[:1] == b"/":  # a sign-on ("/?address!"; the meter reads its "/" alone)
            self._line.rate = SIGN_ON_BAUD
        await self._line.carry(len(data))
        if data[:1] == codec.ACK and len(data) == 6:  # option select: both switch now
            self._line.rate = BAUD
        return data

    async def readexactly(self, n: int) -> bytes:
        return await self._heard(await self._reader.readexactly(n))

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        return await self._heard(await self._reader.readuntil(separator))


class PacedWriter:
    """What the meter says, held back for as long as its characters take on the line."""

    def __init__(self, writer: asyncio.StreamWriter, line: PacedLine) -> None:
        self._writer, self._line = writer, line
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._pending.append(bytes(data))

    async def drain(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data:
            await self._line.carry(len(data))
            self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()


def _simulator(conn, count: int, now: datetime) -> None:
    async def main():
        fleet = Iec21Fleet(make_meters(count), clock=lambda: now)
        line = PacedLine()
        pty = await serve_on_pty(
            lambda r, w: fleet._serve(PacedReader(r, line), PacedWriter(w, line), idle=False)
        )
        conn.send(pty.path)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "reset":
                line.line_s, line.bytes = 0.0, 0
                conn.send("ok")
            elif command == "figures":
                conn.send((line.line_s, line.bytes))
            else:
                break
        await pty.close()

    asyncio.run(main())


def _targets(path: str, count: int) -> list[MeterTarget]:
    targets = []
    for meter in make_meters(count):
        endpoint = Endpoint(
            protocol="iec62056_21",
            url=path,
            baud_rate=BAUD,
            timeout_s=5,
            options={"address": meter.address},
        )
        targets.append(
            MeterTarget(
                meter_id=int(meter.serial),
                serial=meter.serial,
                settings=registry.settings_for(endpoint),
                line=path,  # one bus: the reader lets one session on it at a time
                registers=REGISTERS,
                profiles=(),
                event_logs=(),
            )
        )
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 meters, 2 rounds")
    parser.add_argument("--meters", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count, rounds = (8, 2) if args.quick else (args.meters, args.rounds)
    now = datetime.now(UTC).replace(microsecond=0)
    parent, child = mp.Pipe()
    simulator = mp.Process(target=_simulator, args=(child, count, now), daemon=True)
    simulator.start()
    path = parent.recv()
    targets = _targets(path, count)
    plan = ReadPlan(
        items=frozenset({"clock", "registers"}),
        until=now,
        default_since=now - timedelta(days=1),
        retries=0,
        retry_backoff_s=0,
    )
    ratios = []
    try:
        for round_no in range(1, rounds + 1):
            parent.send("reset")
            parent.recv()
            started = time.monotonic()
            outcomes = asyncio.run(read_batch(targets, plan, None, concurrency=count))
            wall = time.monotonic() - started
            failed = [(o.serial, o.error_kind, str(o.error)) for o in outcomes if not o.ok]
            if failed:
                raise SystemExit(f"reads failed: {failed[:3]}")
            read_values = sum(len(o.registers) for o in outcomes)
            parent.send("figures")
            line_s, moved = parent.recv()
            per_minute = count / wall * 60
            limit = count / line_s * 60
            ratios.append(per_minute / limit)
            print(
                json.dumps(
                    {
                        "bench": "serial_line",
                        "round": round_no,
                        "meters": count,
                        "baud": BAUD,
                        "values": read_values,
                        "seconds": round(wall, 3),
                        "meters_per_minute": round(per_minute, 2),
                        "line_limit_meters_per_minute": round(limit, 2),
                        "bytes_per_read": round(moved / count, 1),
                        "line_seconds_per_read": round(line_s / count, 4),
                        "ratio": round(per_minute / limit, 3),
                        "load": [round(x, 2) for x in os.getloadavg()],
                    }
                ),
                flush=True,
            )
    finally:
        parent.send("stop")
        simulator.join(10)
    print(
        f"{count} IEC 62056-21 meters on one {BAUD}-baud line: median "
        f"{statistics.median(ratios):.2f} of the line's physical limit (target >= 0.8)"
    )


if __name__ == "__main__":
    main()
