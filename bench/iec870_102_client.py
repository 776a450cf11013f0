"""Benchmark: CPU cost of the head-end IEC 870-5-102 driver per meter-day vs a bare loop.

Usage: ``.venv/bin/python bench/iec870_102_client.py [--quick] [--record 11|12]``

One meter-day = one session (link reset, password, a day of load profile = one
``C_CI_NU_2`` request and one class 2 poll per period, end of session), each meter of the
fleet a link address behind one TCP listener, read one after another.

* A = ours: ``Iec102Session`` (transport with deadlines, FCB, typed checks, CP40 to UTC,
  ``ProfileBlock`` of ``Decimal``);
* B = baseline: the same frames sent by a bare asyncio loop over one stream per meter, the
  answers cut with the codec's ``read_frame`` and their totals unpacked with ``struct`` (no
  checksum, no time tags, no dataclasses). No independent IEC 870-5-102 client library is
  installed, so this is the floor of the same exchanges in Python, not another
  implementation.

The simulator runs in another process, so only the client's CPU counts
(``time.process_time``). A and B alternate; the figure is the median over the pairs. A's rows
are asserted against the value model, B's count of periods against A's.

Output: one JSON line per figure, then a readable summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import struct
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collection.protocols.iec870_102 import codec as c  # noqa: E402
from collection.protocols.iec870_102.session import Iec102Session  # noqa: E402
from collection.protocols.iec870_102.settings import Iec102Settings  # noqa: E402
from collection.simulators import model  # noqa: E402
from collection.simulators.iec870_102.server import Iec102Fleet, make_meters  # noqa: E402

NOW = datetime(2025, 6, 16, 0, 30, tzinfo=UTC)
DAY_END = datetime(2025, 6, 16, 0, 0, tzinfo=UTC)


def day_start(record: int) -> datetime:
    """The first period end of the day ending at DAY_END."""
    return DAY_END - timedelta(days=1) + timedelta(seconds=c.RECORD_PERIOD_S[record])


PASSWORD = 1


def _simulator(conn, count: int) -> None:
    async def main():
        fleet = Iec102Fleet(make_meters(count, password=PASSWORD), clock=lambda: NOW)
        await fleet.start()
        conn.send(fleet.url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await fleet.close()

    asyncio.run(main())


def settings(url: str, link: int, record: int) -> Iec102Settings:
    return Iec102Settings(url, link, link, PASSWORD, timeout=5, profile_record=record)


async def run_ours(url: str, links: list[int], record: int) -> list:
    out = []
    for link in links:
        async with Iec102Session(settings(url, link, record)) as session:
            out.append(await session.read_load_profile("p", day_start(record), DAY_END))
    return out


async def bare_meter(host: str, port: int, link: int, record: int) -> int:
    """One meter-day by a bare loop: the number of periods read."""
    start_tag = c.encode_cp40(c.to_local(day_start(record), 60, True), True)
    end_tag = c.encode_cp40(c.to_local(DAY_END, 60, True), True)
    reader, writer = await asyncio.open_connection(host, port)
    fcb = True

    async def exchange(frame: bytes) -> bytes:
        writer.write(frame)
        return await c.read_frame(reader.readexactly)

    def send(asdu: bytes) -> bytes:
        nonlocal fcb
        frame = c.variable(c.primary_control(c.FN_SEND_CONFIRM, fcb), link, asdu)
        fcb = not fcb
        return frame

    def poll() -> bytes:
        nonlocal fcb
        frame = c.fixed(c.primary_control(c.FN_REQUEST_CLASS_2, fcb), link)
        fcb = not fcb
        return frame

    await exchange(c.fixed(c.primary_control(c.FN_RESET_LINK, None), link))
    header = struct.pack("<BBBHB", c.C_AC_NA_2, 1, c.COT_ACTIVATION, link, 0)
    await exchange(send(header + PASSWORD.to_bytes(4, "little")))
    await exchange(poll())
    request = struct.pack("<BBBHB", c.C_CI_NU_2, 1, c.COT_ACTIVATION, link, record)
    await exchange(send(request + bytes([1, 6]) + start_tag + end_tag))
    await exchange(poll())  # the confirmation
    rows = 0
    while True:
        asdu = (await exchange(poll()))[7:-2]  # after 68 L L 68 C A A
        if asdu[0] != c.M_IT_TK_2:
            break
        values = [struct.unpack_from("<BIB", asdu, 6 + 6 * i)[1] for i in range(asdu[1])]
        rows += bool(values)
    await exchange(send(struct.pack("<BBBHB", c.C_FS_NA_2, 0, c.COT_ACTIVATION, link, 0)))
    await exchange(poll())
    writer.close()
    await writer.wait_closed()
    return rows


async def run_bare(url: str, links: list[int], record: int) -> list[int]:
    host, port = url.removeprefix("tcp://").split(":")
    return [await bare_meter(host, int(port), link, record) for link in links]


def check(count: int, record: int, ours: list, bare: list[int]) -> None:
    period = c.RECORD_PERIOD_S[record]
    serials = [m.serial for m in make_meters(count, password=PASSWORD)]
    for serial, block, rows in zip(serials, ours, bare, strict=True):
        assert len(block.rows) == rows == 86400 // period
        last = block.rows[-1]
        n = model.completed_intervals(last.timestamp)
        k = period // model.INTERVAL_S
        assert int(last.values[0]) == model.cumulative(serial, 1, n) - model.cumulative(
            serial, 1, n - k
        )
        assert last.timestamp == DAY_END


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--record", type=int, default=12, choices=[11, 12])
    p.add_argument("--meters", type=int)
    p.add_argument("--pairs", type=int)
    args = p.parse_args()
    count = args.meters or (10 if args.quick else 50)
    pairs = args.pairs or (3 if args.quick else 7)
    parent, child = mp.Pipe()
    sim = mp.Process(target=_simulator, args=(child, count), daemon=True)
    sim.start()
    url = parent.recv()
    links = list(range(1, count + 1))
    try:
        a_cpu, b_cpu = [], []
        for _ in range(pairs):
            t = time.process_time()
            ours = asyncio.run(run_ours(url, links, args.record))
            a_cpu.append(time.process_time() - t)
            t = time.process_time()
            bare = asyncio.run(run_bare(url, links, args.record))
            b_cpu.append(time.process_time() - t)
            check(count, args.record, ours, bare)
    finally:
        parent.send("stop")
        sim.join(10)
    a = statistics.median(a_cpu) / count
    b = statistics.median(b_cpu) / count
    print(
        json.dumps(
            {
                "bench": "iec870_102_client",
                "metric": "cpu_per_meter_day",
                "value": round(a * 1e3, 2),
                "unit": "ms",
                "baseline": round(b * 1e3, 2),
                "ratio": round(a / b, 2),
                "record": args.record,
                "meters": count,
                "pairs": pairs,
            }
        )
    )
    print(
        f"iec870-102 record {args.record}: {a * 1e3:.1f} ms CPU per meter-day (ours) vs "
        f"{b * 1e3:.1f} ms (bare loop of the same frames), ratio {a / b:.2f}; "
        f"{count} meters x {pairs} pairs"
    )


if __name__ == "__main__":
    main()
