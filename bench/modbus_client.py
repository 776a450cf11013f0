"""Benchmark: CPU cost of the head-end Modbus driver vs a bare pymodbus loop.

Usage: ``.venv/bin/python bench/modbus_client.py [--quick] [--model sdm630|pm5500|em340]``

One read = the meter's energy registers + its instantaneous values (voltages, currents,
power, power factors, angles, frequency), every meter of the fleet a unit id behind one
Modbus TCP listener, read one after another over one connection.

* A = ours: ``ModbusSession`` (register map, request planning, decoding to ``Decimal``,
  the shared line) through pymodbus's asyncio client;
* B = baseline: the same requests (same addresses and counts) made by a plain loop over one
  ``AsyncModbusTcpClient``, decoded with pymodbus's ``convert_from_registers`` to floats.

The simulator runs in another process, so only the client's CPU counts
(``time.process_time``). A and B alternate; the figure is the median over the pairs.
Values are asserted against the simulator's value model in A and B.
A meter-day, for a meter polled every 15 minutes (the head-end-side profile), is 96 reads.

Output: one JSON line per figure, then a readable summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from collection.protocols.modbus import registermap as rm  # noqa: E402
from collection.protocols.modbus.session import ModbusSession  # noqa: E402
from collection.protocols.modbus.settings import ModbusSettings  # noqa: E402
from collection.simulators.modbus import values  # noqa: E402
from collection.simulators.modbus.server import ModbusFleet, make_meters  # noqa: E402

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
TYPES = {
    "float32": AsyncModbusTcpClient.DATATYPE.FLOAT32,
    "int16": AsyncModbusTcpClient.DATATYPE.INT16,
    "int32": AsyncModbusTcpClient.DATATYPE.INT32,
    "int64": AsyncModbusTcpClient.DATATYPE.INT64,
    "uint16": AsyncModbusTcpClient.DATATYPE.UINT16,
    "uint32": AsyncModbusTcpClient.DATATYPE.UINT32,
}


def _simulator(conn, count: int, model: str) -> None:
    async def main():
        fleet = ModbusFleet(make_meters(count, model), clock=lambda: NOW)
        await fleet.start()
        conn.send(fleet.url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await fleet.close()

    asyncio.run(main())


async def run_ours(url: str, units: list[int], model: str) -> list:
    out = []
    for unit in units:
        async with ModbusSession(ModbusSettings(url, unit, model, timeout=5)) as session:
            energy = [r.obis for r in session.register_map.of_role("energy")]
            out.append((await session.read_registers(energy), await session.read_instantaneous()))
    return out


async def run_bare(url: str, units: list[int], model: str) -> list:
    the_map = rm.load(model)
    plans = [
        rm.plan(the_map.of_role("energy"), the_map.max_registers, the_map.max_gap),
        rm.plan(the_map.of_role("instantaneous", "pf"), the_map.max_registers, the_map.max_gap),
    ]
    host, port = url.removeprefix("tcp://").split(":")
    client = AsyncModbusTcpClient(host, port=int(port), timeout=5, retries=0)
    await client.connect()
    out = []
    try:
        for unit in units:
            got = {}
            for plan in plans:
                for q in plan:
                    call = (
                        client.read_holding_registers
                        if q.function == 3
                        else client.read_input_registers
                    )
                    words = (await call(q.address, count=q.count, device_id=unit)).registers
                    for reg in q.registers:
                        i = reg.address - q.address
                        got[reg.obis] = client.convert_from_registers(
                            words[i : i + reg.count], TYPES[reg.type], word_order=reg.word_order
                        )
            out.append(got)
    finally:
        client.close()
    return out


def check(model: str, count: int, ours: list, bare: list) -> None:
    the_map = rm.load(model)
    by_obis = the_map.by_obis()
    serials = [m.serial for m in make_meters(count, model)]
    for serial, (registers, inst), raw in zip(serials, ours, bare, strict=True):
        for value in registers:
            assert value.value == values.expected(serial, by_obis[value.obis], NOW)
        assert inst.voltages[0] == values.expected(serial, by_obis["1-0:32.7.0*255"], NOW)
        energy = by_obis["1-0:1.8.0*255"]
        assert abs(float(raw[energy.obis]) * float(energy.scale) - float(registers[0].value)) < 1


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model", default="sdm630", choices=rm.available())
    p.add_argument("--meters", type=int)
    p.add_argument("--pairs", type=int)
    args = p.parse_args()
    count = args.meters or (20 if args.quick else 100)
    pairs = args.pairs or (3 if args.quick else 7)
    parent, child = mp.Pipe()
    sim = mp.Process(target=_simulator, args=(child, count, args.model), daemon=True)
    sim.start()
    url = parent.recv()
    units = list(range(1, count + 1))
    try:
        a_cpu, b_cpu = [], []
        for _ in range(pairs):
            t = time.process_time()
            ours = asyncio.run(run_ours(url, units, args.model))
            a_cpu.append(time.process_time() - t)
            t = time.process_time()
            bare = asyncio.run(run_bare(url, units, args.model))
            b_cpu.append(time.process_time() - t)
            check(args.model, count, ours, bare)
    finally:
        parent.send("stop")
        sim.join(10)
    a = statistics.median(a_cpu) / count
    b = statistics.median(b_cpu) / count
    figures = [
        ("cpu_per_read", a * 1e6, "us", b * 1e6),
        ("cpu_per_meter_day_15min_polls", a * 96 * 1e3, "ms", b * 96 * 1e3),
    ]
    for metric, value, unit, baseline in figures:
        print(
            json.dumps(
                {
                    "bench": "modbus_client",
                    "metric": metric,
                    "value": round(value, 1),
                    "unit": unit,
                    "baseline": round(baseline, 1),
                    "ratio": round(value / baseline, 2),
                    "model": args.model,
                    "meters": count,
                    "pairs": pairs,
                }
            )
        )
    print(
        f"modbus {args.model}: {a * 1e6:.0f} us CPU per read (ours) vs {b * 1e6:.0f} us "
        f"(bare pymodbus loop), ratio {a / b:.2f}; {count} meters x {pairs} pairs"
    )


if __name__ == "__main__":
    main()
