"""Benchmark helper for the simulated DLMS fleet (a measurement, not a pass/fail test).

Prints JSON lines ``{"bench": "dlms_simulator", "metric", "value", "unit", "baseline",
"ratio"}``:

* ``cpu_per_session``: process CPU per "daily read" session (associate, clock, 4 energy
  registers, one day of 96 x 4 profile with block transfer, release) over loopback, client
  included; baseline = CPU of an asyncio echo exchange with the same number of round trips
  and bytes.
* ``rss_per_meter``: RSS growth per meter with 10,000 meters started in one process
  (single listener), after serving sessions to some of them; baseline = RSS before.
* ``rss_per_meter_ports`` (``--per-meter-ports``): the same with one listener per meter.

    .venv/bin/python bench/dlms_simulator.py [--quick] [--per-meter-ports]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collection.protocols.dlms import axdr  # noqa: E402
from collection.simulators.dlms_fleet import DlmsFleet, make_meters  # noqa: E402
from meters import obis as obis_codes  # noqa: E402

NOW = datetime(2025, 3, 10, 12, 7, 30, tzinfo=UTC)
AARQ = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400007e1fffff")
RLRQ = bytes.fromhex("6203800100")


def _get(class_id: int, obis: str, attr: int, selection: bytes = b"") -> bytes:
    head = bytes((0xC0, 0x01, 0xC1)) + class_id.to_bytes(2, "big") + obis_codes.to_bytes(obis)
    return head + bytes((attr,)) + (b"\x01\x01" + selection if selection else b"\x00")


def _day_range() -> bytes:
    clock = axdr.enc_struct(
        axdr.enc_uint16(8),
        axdr.enc_octets(obis_codes.to_bytes("0.0.1.0.0.255")),
        axdr.enc_int8(2),
        axdr.enc_uint16(0),
    )
    return axdr.enc_struct(
        clock,
        axdr.enc_datetime(datetime(2025, 3, 9, 0, 15, tzinfo=UTC)),
        axdr.enc_datetime(datetime(2025, 3, 10, tzinfo=UTC)),
        axdr.enc_array([]),
    )


REQUESTS = [
    AARQ,
    _get(8, "0.0.1.0.0.255", 2),
    *(_get(3, f"1.0.{c}.8.0.255", 2) for c in (1, 2, 3, 4)),
    _get(7, "1.0.99.1.0.255", 2, _day_range()),
]


def _wrap(dst: int, apdu: bytes) -> bytes:
    return b"\x00\x01\x00\x10" + dst.to_bytes(2, "big") + len(apdu).to_bytes(2, "big") + apdu


async def _recv(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(8)
    return await reader.readexactly(int.from_bytes(head[6:8], "big"))


async def daily_read(host: str, port: int, wport: int) -> tuple[int, int]:
    """One session; return (round trips, bytes received)."""
    reader, writer = await asyncio.open_connection(host, port)
    trips = received = 0
    try:
        for req in REQUESTS:
            writer.write(_wrap(wport, req))
            resp = await _recv(reader)
            trips += 1
            received += len(resp)
            while resp[0] == 0xC4 and resp[1] == 2 and resp[3] == 0:  # more blocks
                block = resp[4:8]
                writer.write(_wrap(wport, bytes((0xC0, 0x02, 0xC1)) + block))
                resp = await _recv(reader)
                trips += 1
                received += len(resp)
        writer.write(_wrap(wport, RLRQ))
        await _recv(reader)
        trips += 1
    finally:
        writer.close()
    return trips, received


async def echo_baseline(sessions: int, trips: int, size: int) -> float:
    async def echo(reader, writer):
        try:
            while True:
                head = await reader.readexactly(8)
                await reader.readexactly(int.from_bytes(head[6:8], "big"))
                writer.write(head[:6] + size.to_bytes(2, "big") + bytes(size))
        except asyncio.IncompleteReadError:
            writer.close()

    srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    t0 = time.process_time()
    for _ in range(sessions):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(trips):
            writer.write(_wrap(1, b"\xc0\x01\xc1" + bytes(10)))
            await _recv(reader)
        writer.close()
    cpu = time.process_time() - t0
    srv.close()
    await srv.wait_closed()
    return cpu / sessions


def emit(metric: str, value: float, unit: str, baseline: float) -> None:
    line = {
        "bench": "dlms_simulator",
        "metric": metric,
        "value": round(value, 4),
        "unit": unit,
        "baseline": round(baseline, 4),
        "ratio": round(value / baseline, 3) if baseline else None,
    }
    print(json.dumps(line), flush=True)


async def main_async(args: argparse.Namespace) -> None:
    proc = psutil.Process()
    # CPU per session on a small fleet
    sessions = 30 if args.quick else 300
    meters = make_meters(100)
    async with DlmsFleet(meters, now=lambda: NOW) as fleet:
        host, port = fleet.listeners[0]
        trips, received = await daily_read(host, port, 1)  # warm-up
        t0 = time.process_time()
        for i in range(sessions):
            await daily_read(host, port, 1 + i % len(meters))
        sim_cpu = (time.process_time() - t0) / sessions
    base_cpu = await echo_baseline(sessions, trips, received // trips)
    emit("cpu_per_session", sim_cpu * 1000, "ms", base_cpu * 1000)

    # memory with 10,000 meters in one process
    count = 10_000
    served = 200 if args.quick else 2000
    rss0 = proc.memory_info().rss
    meters = make_meters(count, first_serial=10_000_001)
    fleet = DlmsFleet(meters, now=lambda: NOW, per_meter_ports=args.per_meter_ports)
    await fleet.start()
    try:
        step = max(1, count // served)
        for i in range(0, count, step):
            host, port, wport = fleet.address_of(meters[i].serial)
            await daily_read(host, port, wport)
        rss1 = proc.memory_info().rss
    finally:
        await fleet.close()
    metric = "rss_per_meter_ports" if args.per_meter_ports else "rss_per_meter"
    emit(metric, (rss1 - rss0) / count, "bytes", rss0 / count)
    emit(metric.replace("per_meter", "total") + "_mb", rss1 / 2**20, "MiB", rss0 / 2**20)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="under a minute")
    p.add_argument("--per-meter-ports", action="store_true", help="one listener per meter")
    asyncio.run(main_async(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
