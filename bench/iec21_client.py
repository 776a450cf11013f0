"""Benchmark: CPU cost of the head-end IEC 62056-21 driver vs a bare asyncio loop.

Usage: ``.venv/bin/python bench/iec21_client.py [--quick] [--meters N] [--pairs N] [--profile]``

One read = one meter's readout (mode C, option 0) through its own TCP connection: the energy
registers, the tariffs and maximum demand, and the clock from the same readout. With
``--profile`` a read is a whole meter-day: the readout, then programming mode (P1) and the
day's load profile (``R5 P.01``, 96 intervals x 4 channels, the generic plug-in); the bare
loop does the same dialogue and takes the values with one regular expression.

* A = ours: ``Iec21Session`` (codec, echo tolerance, BCC check, data sets to ``Decimal`` in
  the contract unit, OBIS codes) via ``read_registers`` + ``read_clock``;
* B = baseline: the same bytes exchanged by a plain asyncio loop (sign-on, identification
  line, option select, read up to ETX and the BCC), the BCC checked and the values taken
  with one regular expression into ``Decimal`` (no OBIS, no units).

The simulator runs in another process, so only the client's CPU counts
(``time.process_time``). A and B alternate; the figure is the median over the pairs. Values
are asserted against the simulator's value model (computed before the clock starts) in A
and B. A meter-day is one read.

The line-rate figure is arithmetic, not measured (the simulator has no baud rate): the bytes
one read moves, at 10 bits a character (7E1 plus start and stop bits), over a 9,600-baud
line after the 300-baud sign-on, give the physical limit in meters per minute on one line.

Output: one JSON line per figure, then a readable summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collection.protocols.dlms.cosem import ENERGY_REGISTERS, MAXIMUM_DEMAND  # noqa: E402
from collection.protocols.iec62056_21 import codec, profile  # noqa: E402
from collection.protocols.iec62056_21.session import Iec21Session  # noqa: E402
from collection.protocols.iec62056_21.settings import Iec21Settings  # noqa: E402
from collection.protocols.transport import parse_tcp_url  # noqa: E402
from collection.simulators.iec62056_21 import values  # noqa: E402
from collection.simulators.iec62056_21.server import Iec21Fleet, make_meters  # noqa: E402

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
DAY = (datetime(2025, 6, 14, 12, 15, tzinfo=UTC), datetime(2025, 6, 15, 12, 0, tzinfo=UTC))
PASSWORD = "00000000"  # the simulated meters' P1
_VALUE = re.compile(rb"\(([0-9]+\.[0-9]+)\)")
PROFILE = False  # --profile
REGISTERS = [*ENERGY_REGISTERS, MAXIMUM_DEMAND]  # energies, tariffs, maximum demand
_SET = re.compile(rb"([0-9.]+)\(([0-9.]+)\*k(?:W|var)h?\)")


def _simulator(conn, count: int) -> None:
    async def main():
        fleet = Iec21Fleet(make_meters(count), clock=lambda: NOW)
        await fleet.start()
        conn.send(fleet.url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await fleet.close()

    asyncio.run(main())


async def ours(url: str, meters, expected) -> int:
    moved = 0
    for m in meters:
        s = Iec21Settings(url=url, address=m.address, timeout=5, exchange_log=True)
        if PROFILE:
            s = Iec21Settings(
                url=url, address=m.address, timeout=5, exchange_log=True, password=PASSWORD
            )
        async with Iec21Session(s) as session:
            regs = await session.read_registers(REGISTERS)
            if PROFILE:
                block = await session.read_load_profile("1-0:99.1.0*255", *DAY)
                assert len(block.rows) == 96
                assert block.rows[0].values == expected[m.serial]["profile"]
            else:
                reading = await session.read_clock()
                assert reading.meter_time == NOW
        assert all(r.value == expected[m.serial][r.obis] for r in regs)
        moved += sum(len(e.data) for e in session.exchange_log)
    return moved


async def bare(url: str, meters, expected) -> int:
    host, port = parse_tcp_url(url)
    moved = 0
    for m in meters:
        reader, writer = await asyncio.open_connection(host, port)
        sign_on = b"/?" + m.address.encode() + b"!\r\n"
        writer.write(sign_on)
        ident = await reader.readuntil(b"\n")
        select = b"\x06" + b"0" + ident[4:5] + b"0\r\n"
        writer.write(select)
        block = await reader.readuntil(b"\x03")
        bcc = await reader.readexactly(1)
        writer.close()
        assert codec.bcc(block[1:]) == bcc[0]
        got = {a: Decimal(v.decode()) * 1000 for a, v in _SET.findall(block)}
        assert got[b"1.8.0"] == expected[m.serial]["1-0:1.8.0*255"]
        moved += len(sign_on) + len(ident) + len(select) + len(block) + 1
        if PROFILE:
            moved += await bare_profile(host, port, m, expected, sign_on)
    return moved


async def bare_profile(host, port, m, expected, sign_on) -> int:
    """Programming mode by hand: sign-on, option 1, P0, P1, R5 P.01 (blocks up to ETX), B0."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(sign_on)
    ident = await reader.readuntil(b"\n")
    writer.write(b"\x06" + b"0" + ident[4:5] + b"1\r\n")
    p0 = await reader.readuntil(b"\x03") + await reader.readexactly(1)
    p1 = b"P1\x02(" + PASSWORD.encode() + b")\x03"
    writer.write(b"\x01" + p1 + bytes([codec.bcc(p1)]))
    assert await reader.readexactly(1) == b"\x06"
    span = f"{profile.stamp(DAY[0])};{profile.stamp(DAY[1])}".encode()
    r5 = b"R5\x02P.01(" + span + b")\x03"
    writer.write(b"\x01" + r5 + bytes([codec.bcc(r5)]))
    block = await reader.readuntil(b"\x03")
    bcc = await reader.readexactly(1)
    assert codec.bcc(block[1:]) == bcc[0]
    writer.write(b"\x01B0\x03" + bytes([codec.bcc(b"B0\x03")]))
    writer.close()
    values = [Decimal(v.decode()) * 1000 for v in _VALUE.findall(block)]
    assert len(values) == 96 * 4 and tuple(values[:4]) == expected[m.serial]["profile"]
    return len(sign_on) + len(ident) + 6 + len(p0) + len(p1) + 2 + len(r5) + len(block) + 7


def measure(fn, url, meters, expected) -> tuple[float, int]:
    start = time.process_time()
    moved = asyncio.run(fn(url, meters, expected))
    return (time.process_time() - start) / len(meters), moved // len(meters)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--meters", type=int, default=200)
    p.add_argument("--pairs", type=int, default=7)
    p.add_argument("--profile", action="store_true", help="a meter-day with its load profile")
    args = p.parse_args()
    global PROFILE
    PROFILE = args.profile
    count, pairs = (40, 3) if args.quick else (args.meters, args.pairs)
    parent, child = mp.Pipe()
    proc = mp.Process(target=_simulator, args=(child, count), daemon=True)
    proc.start()
    try:
        url = parent.recv()
        meters = make_meters(count)
        # The model's values, computed before the clock starts (maximum demand scans a month).
        expected = {m.serial: values.expected(m.serial, NOW) for m in meters}
        for m in meters:
            first = values.expected_profile(m.serial, *DAY)[DAY[0]]
            expected[m.serial]["profile"] = tuple(Decimal(v) for v in first)
        a, b = [], []
        for _ in range(pairs):
            cpu_a, bytes_a = measure(ours, url, meters, expected)
            cpu_b, _bytes_b = measure(bare, url, meters, expected)
            a.append(cpu_a)
            b.append(cpu_b)
    finally:
        parent.send("stop")
        proc.join(10)
    med_a, med_b = statistics.median(a), statistics.median(b)
    sign_on_bytes = len(codec.sign_on(meters[0].address)) + len(b"/AMi5SIM21\r\n") + 6
    sign_on_bytes *= 2 if PROFILE else 1  # programming mode signs on (at 300 baud) again
    line_s = sign_on_bytes * 10 / 300 + (bytes_a - sign_on_bytes) * 10 / 9600
    figures = {
        "client_cpu_us_per_read_ours": round(med_a * 1e6),
        "client_cpu_us_per_read_bare": round(med_b * 1e6),
        "ratio_ours_to_bare": round(med_a / med_b, 2),
        "bytes_per_read": bytes_a,
        "line_limit_meters_per_minute_9600": round(60 / line_s, 1),
        "meters": count,
        "pairs": pairs,
        "profile": PROFILE,
    }
    for name, value in figures.items():
        print(json.dumps({"figure": name, "value": value}))
    print(
        f"IEC 62056-21 {'readout + day profile' if PROFILE else 'readout'},"
        f" {count} meters x {pairs} pairs:"
        f" ours {figures['client_cpu_us_per_read_ours']} us"
        f" vs bare {figures['client_cpu_us_per_read_bare']} us CPU per read"
        f" (x{figures['ratio_ours_to_bare']}); {bytes_a} bytes a read,"
        f" {figures['line_limit_meters_per_minute_9600']} meters/min at most on a 9,600-baud line"
    )


if __name__ == "__main__":
    main()
