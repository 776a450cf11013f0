"""Benchmark: CPU cost of the head-end DLMS client vs a bare gurux-dlms loop.

Usage: ``.venv/bin/python bench/dlms_client.py [--quick] [--interface wrapper|hdlc]``

Session = association (+HLS-GMAC for "high") + clock + energy register 1.8.0
(value + scaler_unit, one GET-with-list) + one day of load profile (capture
objects + period with-list, 4 channel scalers with-list, 96 rows x 4 channels
by range) + release.  Both sides send the same requests.

* A = ours: ``collection.protocols.dlms.DlmsClient`` on asyncio;
* B = baseline: the same requests made by a plain loop of gurux-dlms calls
  (blocking socket, GXDLMSSecureClient, gurux's own getData/updateValue parsing).

The simulator runs in a separate process, so only the client side's CPU is
measured (``time.process_time`` of this process).  A and B alternate
(A B A B ...); the figure is the median over the pairs.  Values read are
asserted against ``collection/simulators/model.py`` in both.

Output: one JSON line per figure, then a readable summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2024, 3, 15, 12, 7, 30, tzinfo=UTC)
START = NOW - timedelta(days=1) + timedelta(seconds=1)  # exactly 96 rows
END = NOW
CLIENT_TITLE = b"BENCHHE1"
CLIENT = {"none": 16, "low": 17, "high": 1}


# ----------------------------------------------------------------- simulator process


def _simulator(conn, count: int, interface: str, latency: float) -> None:
    from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters

    async def main():
        meters = make_meters(count)
        if latency:
            for m in meters:
                m.fault = Fault("late", delay_s=latency)
        async with DlmsFleet(meters, interface=interface, now=lambda: NOW) as fleet:
            addresses = {m.serial: tuple(fleet.address_of(m.serial)) for m in meters}
            conn.send(addresses)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, conn.recv)  # wait for "stop"

    asyncio.run(main())


class Simulator:
    def __init__(self, count: int, interface: str, latency: float = 0.0) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_simulator, args=(child, count, interface, latency), daemon=True
        )

    def __enter__(self) -> dict:
        self.proc.start()
        if not self.conn.poll(30):
            raise RuntimeError("simulator did not start")
        return self.conn.recv()

    def __exit__(self, *exc) -> None:
        self.conn.send("stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# ----------------------------------------------------------------- expected values


class Expected:
    def __init__(self, serials) -> None:
        from collection.simulators import model
        from collection.simulators.dlms.meter import (
            default_auth_key,
            default_block_key,
        )

        self.model = model
        self.keys = {s: (default_auth_key(s), default_block_key(s)) for s in serials}
        self.energy = {s: model.energy_register(s, 1, NOW) for s in serials}
        self.rows = {s: model.profile_entries(s, START, END) for s in serials}
        for rows in self.rows.values():
            assert len(rows) == 96


class CounterSource:
    """One invocation-counter sequence shared by A and B (the meter checks it)."""

    def __init__(self) -> None:
        self.next = 1

    def take(self, n: int) -> int:
        first = self.next
        self.next += n
        return first

    # InvocationCounterStore protocol for our client
    async def get(self, key: str) -> int:
        return self.next

    async def reserve(self, key: str, n: int = 1) -> int:
        return self.take(n)

    async def advance_to(self, key: str, value: int) -> None:
        self.next = max(self.next, value)


# ----------------------------------------------------------------- A: ours


def _settings(auth: str, interface: str, addr, serial: str, exp: Expected):
    from collection.protocols.dlms.settings import DlmsSettings

    host, port, sa = addr
    ak, bk = exp.keys[serial]
    return DlmsSettings(
        url=f"tcp://{host}:{port}",
        interface=interface,
        auth=auth,
        server_address=sa,
        physical_address=17 if interface == "hdlc" else None,
        password=b"12345678" if auth == "low" else None,
        auth_key=ak if auth == "high" else None,
        block_key=bk if auth == "high" else None,
        system_title=CLIENT_TITLE if auth == "high" else None,
        response_timeout=10,
        counter_key="bench",
        hdlc_max_info=512,
    )


async def ours_session(settings, serial: str, exp: Expected, counters) -> None:
    from collection.protocols.dlms.client import DlmsClient

    async with DlmsClient(settings, counters) as c:
        clock = await c.read_clock()
        reg = (await c.read_registers(["1-0:1.8.0*255"]))[0]
        block = await c.read_load_profile("1-0:99.1.0*255", START, END)
    assert clock.meter_time == NOW
    assert reg.value == Decimal(exp.energy[serial])
    want = exp.rows[serial]
    assert len(block.rows) == 96
    for row, w in zip(block.rows, want, strict=True):
        assert row.timestamp == w[0] and row.values == tuple(Decimal(v) for v in w[1:])


def run_ours(auth, interface, addresses, serials, exp, counters) -> float:
    """CPU seconds per session, sessions run one after the other."""
    settings = [_settings(auth, interface, addresses[s], s, exp) for s in serials]

    async def main():
        t0 = time.process_time()
        for s, st in zip(serials, settings, strict=True):
            await ours_session(st, s, exp, counters)
        return time.process_time() - t0

    return asyncio.run(main()) / len(serials)


# ----------------------------------------------------------------- B: bare gurux loop


def gurux_session(auth, interface, addr, serial, exp: Expected, counters: CounterSource):
    from gurux_dlms import GXByteBuffer, GXReplyData
    from gurux_dlms.enums import Authentication, InterfaceType, Security
    from gurux_dlms.objects import GXDLMSClock, GXDLMSProfileGeneric, GXDLMSRegister
    from gurux_dlms.secure import GXDLMSSecureClient

    host, port, sa = addr
    mech = {
        "none": Authentication.NONE,
        "low": Authentication.LOW,
        "high": Authentication.HIGH_GMAC,
    }
    itf = InterfaceType.WRAPPER if interface == "wrapper" else InterfaceType.HDLC
    server = sa if interface == "wrapper" else GXDLMSSecureClient.getServerAddress(sa, 17)
    c = GXDLMSSecureClient(
        True, CLIENT[auth], server, mech[auth], "12345678" if auth == "low" else None, itf
    )
    c.settings.maxPduSize = 1024
    if interface == "hdlc":
        c.hdlcSettings.maxInfoTX = 512
        c.hdlcSettings.maxInfoRX = 512
    if auth == "high":
        ak, bk = exp.keys[serial]
        c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
        c.ciphering.systemTitle = bytearray(CLIENT_TITLE)
        c.ciphering.authenticationKey = bytearray(ak)
        c.ciphering.blockCipherKey = bytearray(bk)
        c.ciphering.invocationCounter = counters.take(0)
    sock = socket.create_connection((host, port), timeout=10)

    def packet(data, reply):
        sock.sendall(data)
        notify = GXReplyData()
        rd = GXByteBuffer()
        while not c.getData(rd, reply, notify):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            rd.set(chunk)

    def block(messages, reply):
        for m in messages:
            reply.clear()
            packet(m, reply)
            while reply.isMoreData():
                packet(c.receiverReady(reply), reply)

    def read(obj, attr):
        reply = GXReplyData()
        block(c.read(obj, attr), reply)
        c.updateValue(obj, attr, reply.value)
        return obj

    def read_list(items):
        values = []
        for messages in c.readList(items):
            reply = GXReplyData()
            block(messages, reply)
            values.extend(reply.value or [])
        c.updateValues(items, values)

    try:
        if interface == "hdlc":
            reply = GXReplyData()
            packet(c.snrmRequest(), reply)
            c.parseUAResponse(reply.data)
        reply = GXReplyData()
        block(c.aarqRequest(), reply)
        c.parseAareResponse(reply.data)
        if auth == "high":
            reply = GXReplyData()
            block(c.getApplicationAssociationRequest(), reply)
            c.parseApplicationAssociationResponse(reply.data)
        # Same requests as ours: GET-with-list wherever ours uses it.
        clock = read(GXDLMSClock("0.0.1.0.0.255"), 2)
        reg = GXDLMSRegister("1.0.1.8.0.255")
        read_list([(reg, 2), (reg, 3)])
        pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
        read_list([(pg, 3), (pg, 4)])
        read_list([(obj, 3) for obj, _ in pg.captureObjects if isinstance(obj, GXDLMSRegister)])
        reply = GXReplyData()
        block(c.readRowsByRange(pg, START, END), reply)
        c.updateValue(pg, 2, reply.value)
        reply = GXReplyData()
        release = c.releaseRequest()
        if release:
            block(release, reply)
        if interface == "hdlc":
            reply = GXReplyData()
            packet(c.disconnectRequest(), reply)
    finally:
        sock.close()
        if auth == "high":
            counters.advance(c.ciphering.invocationCounter)
    assert clock.time.value.astimezone(UTC) == NOW
    assert Decimal(reg.value) * Decimal(str(reg.scaler)) == Decimal(exp.energy[serial])
    want = exp.rows[serial]
    assert len(pg.buffer) == 96
    for row, w in zip(pg.buffer, want, strict=True):
        assert row[0].value.astimezone(UTC) == w[0]
        assert tuple(int(v) for v in row[1:]) == w[1:]


def run_gurux(auth, interface, addresses, serials, exp, counters) -> float:
    t0 = time.process_time()
    for s in serials:
        gurux_session(auth, interface, addresses[s], s, exp, counters)
    return (time.process_time() - t0) / len(serials)


# ----------------------------------------------------------------- throughput


def run_concurrent(auth, interface, addresses, serials, exp, counters, concurrency):
    """Many sessions in one loop with latency overlapped: (cpu s, wall s)."""
    settings = {s: _settings(auth, interface, addresses[s], s, exp) for s in serials}

    async def main():
        sem = asyncio.Semaphore(concurrency)

        async def one(s):
            async with sem:
                await ours_session(settings[s], s, exp, counters)

        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(s) for s in serials))
        return time.process_time() - c0, time.perf_counter() - w0

    return asyncio.run(main())


def emit(metric, value, unit, baseline, ratio, extra=None):
    line = {
        "bench": "dlms_client",
        "metric": metric,
        "value": round(value, 6),
        "unit": unit,
        "baseline": round(baseline, 6) if baseline is not None else None,
        "ratio": round(ratio, 4) if ratio is not None else None,
    }
    if extra:
        line.update(extra)
    print(json.dumps(line), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="under a minute")
    p.add_argument("--interface", default="wrapper", choices=["wrapper", "hdlc"])
    args = p.parse_args(argv)

    # CounterSource needs a sync "advance" for the gurux loop.
    CounterSource.advance = lambda self, v: setattr(self, "next", max(self.next, int(v)))

    pairs = 3 if args.quick else 5
    per_run = 8 if args.quick else 25
    conc_sessions = 120 if args.quick else 600
    concurrency = 60 if args.quick else 200
    latency = 0.02
    cores = os.cpu_count()
    modes = ("none", "low", "high")
    summary = []

    meters_needed = max(per_run, 1)
    with Simulator(meters_needed, args.interface) as addresses:
        serials = list(addresses)[:per_run]
        exp = Expected(serials)
        counters = CounterSource()
        # warm-up (imports, caches) for both sides
        for auth in modes:
            run_ours(auth, args.interface, addresses, serials[:2], exp, counters)
            run_gurux(auth, args.interface, addresses, serials[:2], exp, counters)
        for auth in modes:
            a_runs, b_runs = [], []
            for _ in range(pairs):
                a_runs.append(run_ours(auth, args.interface, addresses, serials, exp, counters))
                b_runs.append(run_gurux(auth, args.interface, addresses, serials, exp, counters))
            a, b = statistics.median(a_runs), statistics.median(b_runs)
            emit(
                f"cpu_ms_per_meter_{auth}",
                a * 1000,
                "ms",
                b * 1000,
                a / b,
                {
                    "interface": args.interface,
                    "pairs": pairs,
                    "sessions_per_run": per_run,
                    "cpu_count": cores,
                },
            )
            summary.append((auth, a, b))

    with Simulator(conc_sessions, args.interface, latency=latency) as addresses:
        serials = list(addresses)
        exp = Expected(serials)
        counters = CounterSource()
        throughput = []
        for auth in ("none", "high"):
            cpu, wall = run_concurrent(
                auth, args.interface, addresses, serials, exp, counters, concurrency
            )
            per_core = len(serials) / cpu * 60
            baseline_cpu = next(b for m, _a, b in summary if m == auth)
            baseline_per_core = 60 / baseline_cpu
            emit(
                f"meters_per_minute_per_core_{auth}",
                per_core,
                "meters/min/core",
                baseline_per_core,
                baseline_per_core / per_core,
                {
                    "interface": args.interface,
                    "concurrency": concurrency,
                    "latency_ms": latency * 1000,
                    "sessions": len(serials),
                    "wall_meters_per_minute": round(len(serials) / wall * 60, 1),
                    "cpu_count": cores,
                },
            )
            throughput.append((auth, per_core, baseline_per_core, len(serials) / wall * 60))

    print()
    print(
        f"dlms_client bench ({args.interface}, os.cpu_count()={cores}, "
        f"{'quick' if args.quick else 'full'}: {pairs} A/B pairs x {per_run} sessions)"
    )
    print("  session = associate + clock + 1.8.0 + 1 day profile (96x4) + release")
    for auth, a, b in summary:
        print(
            f"  CPU per meter [{auth:>4}]: ours {a * 1000:7.2f} ms  gurux loop {b * 1000:7.2f} ms"
            f"  ratio {a / b:5.2f}"
        )
    for auth, per_core, base, wall in throughput:
        print(
            f"  meters/min/core [{auth:>4}]: ours {per_core:8.0f}  gurux loop (blocking) "
            f"{base:8.0f}  (ratio baseline/ours {base / per_core:4.2f}; "
            f"wall {wall:.0f}/min with {latency * 1000:.0f} ms latency, "
            f"{concurrency} concurrent)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
