"""``simulate_meters`` core: ``main(argv)`` runs a simulated fleet until SIGINT/SIGTERM.

python -m collection.simulators.cli --protocol dlms --count 100 --interface hdlc
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from .dlms_fleet import FAULT_KINDS, DlmsFleet, assign_faults, make_meters
from .iec870_102.server import FAULT_KINDS as IEC102_FAULT_KINDS
from .iec870_102.server import Fault as Iec102Fault
from .iec870_102.server import Iec102Fleet
from .iec870_102.server import make_meters as make_iec102_meters
from .iec62056_21.server import FAULT_KINDS as IEC21_FAULT_KINDS
from .iec62056_21.server import Fault as Iec21Fault
from .iec62056_21.server import Iec21Fleet
from .iec62056_21.server import make_meters as make_iec21_meters
from .incidents import demo_fleet
from .modbus.server import FAULT_KINDS as MODBUS_FAULT_KINDS
from .modbus.server import Fault as ModbusFault
from .modbus.server import ModbusFleet
from .modbus.server import make_meters as make_modbus_meters

HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simulate_meters", description=__doc__.splitlines()[0])
    p.add_argument(
        "--protocol",
        type=lambda name: name.replace("_", "-"),
        choices=["dlms", "modbus", "iec62056-21", "iec870-102"],
        default="dlms",
    )
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--port", type=int, default=0, help="listener port (first port per meter)")
    p.add_argument("--per-meter-ports", action="store_true")
    p.add_argument("--interface", choices=["wrapper", "hdlc"], default="wrapper")
    p.add_argument("--fault-share", type=float, default=0.0)
    p.add_argument(
        "--faults",
        default=None,
        help="comma separated kinds (dlms: "
        f"{','.join(FAULT_KINDS)}; modbus: {','.join(MODBUS_FAULT_KINDS)}; "
        f"iec62056-21: {','.join(IEC21_FAULT_KINDS)}; "
        f"iec870-102: {','.join(IEC102_FAULT_KINDS)}; default: all)",
    )
    p.add_argument("--model", default="sdm630", help="modbus: the meters' register map")
    p.add_argument(
        "--framing",
        choices=["tcp", "rtu"],
        default="tcp",
        help="modbus: Modbus TCP, or RTU frames over TCP (a TCP-serial converter's bus)",
    )
    p.add_argument(
        "--pty",
        action="store_true",
        help="modbus: serve RTU on a pseudo-terminal (a serial bus) and print its path",
    )
    p.add_argument(
        "--password",
        default="00000000",
        help="iec62056-21: the meters' P1 password; iec870-102: their (numeric) password",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-serial", type=int, default=90000001)
    p.add_argument("--push-to", default=None, help="host:port of the head-end push listener")
    p.add_argument("--manifest", default=None, help="write a JSON manifest of the meters")
    p.add_argument(
        "--concentrator",
        action="append",
        default=[],
        metavar="WPORT:SERIAL:FIRST:COUNT",
        help="dlms wrapper: also serve at WPORT a data concentrator's own logical device "
        "holding the collected data of the COUNT meters from address FIRST (repeatable; "
        "meters past --count are left out)",
    )
    p.add_argument("--idle-timeout", type=float, default=120.0)
    p.add_argument(
        "--counters-from-clock",
        action="store_true",
        help="dlms: each meter's invocation counter starts at the Unix time, as a real meter's "
        "survives a restart: a head-end that remembers the last counter of each meter (the "
        "push replay guard) accepts a restarted simulator's pushes (fewer than one message a "
        "second per meter keeps every start above the last)",
    )
    p.add_argument(
        "--cumulative-every",
        type=int,
        default=0,
        help="every N-th meter (N, 2N, ...) has an IDIS-style cumulative load profile",
    )
    p.add_argument(
        "--scenario",
        choices=["none", "demo"],
        default="none",
        help="demo: make run's scripted incidents (power failures, cover opened, ...; "
        "see incidents.py), pushed to --push-to as they happen",
    )
    p.add_argument(
        "--scenario-anchor",
        type=_aware,
        default=None,
        help="ISO time the incident timetable counts from (default: the start)",
    )
    return p


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-01-01T00:00:00+00:00")
    return value.astimezone(UTC)


def manifest(fleet: DlmsFleet) -> list[dict]:
    out = []
    for m in fleet.meters:
        a = fleet.address_of(m.serial)
        out.append(
            {
                "serial": m.serial,
                "host": a.host,
                "port": a.port,
                "server_address": a.server_address,
                "wport": a.wport,
                "hdlc_logical": a.hdlc_logical,
                "hdlc_physical": a.hdlc_physical,
                "interface": fleet.interface,
                "password": m.password.decode("latin-1"),
                "auth_key": m.auth_key.hex(),
                "block_key": m.block_key.hex(),
                "system_title": m.system_title.hex(),
                "fault": m.fault.kind if m.fault else None,
                "profile_style": m.profile_style,
                "scripted": m.script is not None,
            }
        )
    return out


def _fault_kinds(args: argparse.Namespace, known: tuple[str, ...]) -> list[str]:
    kinds = [k.strip() for k in (args.faults or ",".join(known)).split(",") if k.strip()]
    for k in kinds:
        if k not in known:
            raise SystemExit(f"unknown fault {k!r}; choose from {', '.join(known)}")
    return kinds


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run_modbus(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """Modbus meters as unit ids 1..N behind one listener (a gateway or a bus)."""
    kinds = _fault_kinds(args, MODBUS_FAULT_KINDS)
    meters = make_modbus_meters(args.count, args.model, first_serial=args.first_serial)
    if args.fault_share > 0:
        assign_faults(meters, args.fault_share, kinds, args.seed, fault_class=ModbusFault)
    framing = "rtu" if args.pty else args.framing
    fleet = ModbusFleet(
        meters, framing=framing, host=HOST, port=args.port, idle_timeout=args.idle_timeout
    )
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    url = await fleet.start_pty() if args.pty else None
    if url is None:
        await fleet.start()
        url = fleet.url
    try:
        if args.manifest:
            with open(args.manifest, "w") as f:
                rows = [
                    {
                        "serial": m.serial,
                        "url": url,
                        "unit_id": m.unit_id,
                        "model": args.model,
                        "fault": m.fault.kind if m.fault else None,
                    }
                    for m in meters
                ]
                json.dump(rows, f, indent=1)
        # Printed once the manifest is written: the line tells a script both are ready.
        print(f"modbus {url} model {args.model} meters {len(meters)} units 1..{len(meters)}")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await fleet.close()


async def _serve_fleet(
    fleet, manifest: str | None, rows: list[dict], line: str, stop: asyncio.Event | None
) -> None:
    """Start `fleet` on its listener, write the `manifest` (`rows`, each with the fleet's
    url), print `line` once both are ready, and serve until `stop`."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    await fleet.start()
    try:
        if manifest:
            with open(manifest, "w") as f:
                json.dump([{"url": fleet.url, **row} for row in rows], f, indent=1)
        # Printed once the manifest is written: the line tells a script both are ready.
        print(line.format(url=fleet.url))
        sys.stdout.flush()
        await stop.wait()
    finally:
        await fleet.close()


async def run_iec21(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """IEC 62056-21 meters behind one listener, each signed on by its serial as address."""
    kinds = _fault_kinds(args, IEC21_FAULT_KINDS)
    meters = make_iec21_meters(args.count, first_serial=args.first_serial, password=args.password)
    if args.fault_share > 0:
        assign_faults(meters, args.fault_share, kinds, args.seed, fault_class=Iec21Fault)
    fleet = Iec21Fleet(meters, host=HOST, port=args.port, idle_timeout=args.idle_timeout)
    rows = [
        {
            "serial": m.serial,
            "device_address": m.address,
            "fault": m.fault.kind if m.fault else None,
        }
        for m in meters
    ]
    line = f"iec62056-21 {{url}} meters {len(meters)} addresses = serials"
    await _serve_fleet(fleet, args.manifest, rows, line, stop)


async def run_iec102(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """IEC 870-5-102 meters behind one listener, link address = measuring point = 1..N."""
    kinds = _fault_kinds(args, IEC102_FAULT_KINDS)
    if not args.password.isdigit():
        raise SystemExit("an IEC 870-5-102 password is a number")
    meters = make_iec102_meters(
        args.count, first_serial=args.first_serial, password=int(args.password)
    )
    if args.fault_share > 0:
        assign_faults(meters, args.fault_share, kinds, args.seed, fault_class=Iec102Fault)
    fleet = Iec102Fleet(meters, host=HOST, port=args.port, idle_timeout=args.idle_timeout)
    rows = [
        {
            "serial": m.serial,
            "link_address": m.link_address,
            "measuring_point": m.measuring_point,
            "fault": m.fault.kind if m.fault else None,
        }
        for m in meters
    ]
    line = f"iec870-102 {{url}} meters {len(meters)} link addresses 1..{len(meters)}"
    await _serve_fleet(fleet, args.manifest, rows, line, stop)


async def run(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    if args.protocol == "modbus":
        await run_modbus(args, stop)
        return
    if args.protocol == "iec62056-21":
        await run_iec21(args, stop)
        return
    if args.protocol == "iec870-102":
        await run_iec102(args, stop)
        return
    kinds = _fault_kinds(args, FAULT_KINDS)
    if args.scenario == "demo":
        anchor = args.scenario_anchor or datetime.now(UTC).replace(microsecond=0)
        meters = demo_fleet(args.count, anchor, first_serial=args.first_serial).meters
    else:
        meters = make_meters(args.count, first_serial=args.first_serial)
    if args.cumulative_every > 0:
        for i, meter in enumerate(meters, start=1):
            if i % args.cumulative_every == 0:
                meter.profile_style = "cumulative"
    if args.fault_share > 0:
        assign_faults(meters, args.fault_share, kinds, args.seed)
    fleet = DlmsFleet(
        meters,
        host=HOST,
        port=args.port,
        interface=args.interface,
        per_meter_ports=args.per_meter_ports,
        idle_timeout=args.idle_timeout,
        push_to=args.push_to,
        counter_base=int(time.time()) if args.counters_from_clock else 0,
    )
    for spec in args.concentrator:
        try:
            wport, serial, first, count = spec.split(":")
            addresses = range(int(first), min(int(first) + int(count), len(meters) + 1))
            fleet.add_concentrator(int(wport), serial, list(addresses))
        except ValueError as exc:
            raise SystemExit(f"--concentrator {spec}: {exc}") from None
        print(f"dlms concentrator {serial} at wPort {wport}: meters {list(addresses)}")
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    await fleet.start(push_incidents=args.scenario != "none")
    try:
        if args.per_meter_ports:
            for m in meters:
                a = fleet.address_of(m.serial)
                print(f"dlms {args.interface} {a.host}:{a.port} meter {m.serial} address 1")
        else:
            host, port = fleet.listeners[0]
            print(
                f"dlms {args.interface} {host}:{port} meters {len(meters)} "
                f"addresses 1..{len(meters)}"
            )
        if args.manifest:
            with open(args.manifest, "w") as f:
                json.dump(manifest(fleet), f, indent=1)
        if args.scenario != "none":
            print(f"scenario {args.scenario}: incidents pushed to {args.push_to or 'nowhere'}")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await fleet.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1:
        raise SystemExit("--count must be >= 1")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
