"""``read_meter`` command-line core: ``main(argv) -> int``.

Prints JSON (Decimals as strings, datetimes ISO-8601 with ``Z``).  Errors:
one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from . import registry
from .dlms.cosem import ENERGY_REGISTERS, EVENT_LOG, LOAD_PROFILE, MAXIMUM_DEMAND
from .dlms.settings import DlmsSettings
from .errors import ProtocolError
from .iec870_102.session import REGISTERS as IEC102_REGISTERS
from .iec870_102.settings import Iec102Settings
from .iec62056_21 import clock as iec21_clock
from .iec62056_21.settings import Iec21Settings
from .modbus import registermap
from .modbus.settings import ModbusSettings

WHAT = ("clock", "registers", "profile", "events", "instantaneous", "relay")


def to_jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [to_jsonable(v) for v in value]
    return value


def _iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="read_meter", description="Read a meter once.")
    p.add_argument(
        "--protocol",
        default="dlms",
        type=lambda name: name.replace("-", "_"),  # "iec62056-21", "iec870-102" as written
        choices=sorted(registry.DRIVERS),
    )
    p.add_argument("--url", required=True, help="tcp://HOST:PORT or a pyserial URL")
    p.add_argument("--interface", default="wrapper", choices=["wrapper", "hdlc"])
    p.add_argument("--client-address", type=int)
    p.add_argument("--server-address", type=int, default=1)
    p.add_argument("--physical-address", type=int)
    p.add_argument("--auth", default="none", choices=["none", "low", "high"])
    p.add_argument("--password")
    p.add_argument("--auth-key")
    p.add_argument("--block-key")
    p.add_argument("--system-title")
    p.add_argument("--invocation-counter", type=int, default=1)
    p.add_argument("--max-pdu", type=int, default=1024)
    p.add_argument("--unit-id", type=int, help="Modbus unit (slave) id")
    p.add_argument(
        "--model",
        help="Modbus register map: a shipped name "
        f"({', '.join(registermap.available())}) or a JSON file",
    )
    p.add_argument("--device-address", default="", help="IEC 62056-21 sign-on address")
    p.add_argument(
        "--clock-dialect",
        default="standard",
        choices=sorted(iec21_clock.DIALECTS),
        help="IEC 62056-21: the meter model's clock plug-in",
    )
    p.add_argument("--link-address", type=int, help="IEC 870-5-102 link address")
    p.add_argument("--measuring-point", type=int, help="IEC 870-5-102 measuring point")
    p.add_argument("--what", default="clock,registers")
    p.add_argument("--registers", help="comma separated OBIS codes (default: energy + MD)")
    p.add_argument(
        "--profile",
        default=LOAD_PROFILE,
        help="the profile to read (IEC 870-5-102 closures: 0-0:98.1.0*255 monthly, "
        "98.1.1 / 98.1.2 contracts II / III, 0-0:98.2.0*255 daily)",
    )
    p.add_argument("--event-log", default=EVENT_LOG, help="the event log to read")
    p.add_argument("--since", type=_iso)
    p.add_argument("--until", type=_iso)
    p.add_argument("--json", action="store_true", help="JSON output (always on; kept for scripts)")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--log-frames", action="store_true", help="include the exchange log")
    return p


def settings_from_args(args):
    if args.protocol == "modbus":
        if args.unit_id is None or not args.model:
            raise ValueError("--protocol modbus needs --unit-id and --model")
        return ModbusSettings(
            url=args.url,
            unit_id=args.unit_id,
            register_map=args.model,
            timeout=args.timeout,
            exchange_log=args.log_frames,
        )
    if args.protocol == "iec62056_21":
        return Iec21Settings(
            url=args.url,
            address=args.device_address,
            password=args.password,
            timeout=args.timeout,
            clock=args.clock_dialect,
            exchange_log=args.log_frames,
        )
    if args.protocol == "iec870_102":
        if args.link_address is None or args.measuring_point is None or not args.password:
            raise ValueError(
                "--protocol iec870-102 needs --link-address, --measuring-point and --password"
            )
        if not args.password.isdigit():
            raise ValueError("an IEC 870-5-102 password is a number")
        return Iec102Settings(
            url=args.url,
            link_address=args.link_address,
            measuring_point=args.measuring_point,
            password=int(args.password),
            timeout=args.timeout,
            exchange_log=args.log_frames,
        )
    return DlmsSettings(
        url=args.url,
        interface=args.interface,
        auth=args.auth,
        client_address=args.client_address,
        server_address=args.server_address,
        physical_address=args.physical_address,
        password=args.password,
        auth_key=args.auth_key,
        block_key=args.block_key,
        system_title=args.system_title,
        max_pdu=args.max_pdu,
        connect_timeout=args.timeout,
        response_timeout=args.timeout,
        invocation_counter=args.invocation_counter,
        exchange_log=args.log_frames,
    )


def default_registers(settings) -> list[str]:
    """The registers read when none are named: the energy registers (and MD) of the meter."""
    if isinstance(settings, ModbusSettings):
        return [r.obis for r in registermap.load(settings.register_map).of_role("energy")]
    if isinstance(settings, Iec102Settings):
        return list(IEC102_REGISTERS)
    return [*ENERGY_REGISTERS, MAXIMUM_DEMAND]


async def run(args, settings, counter_store=None) -> dict:
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    unknown = set(what) - set(WHAT)
    if unknown:
        raise ValueError(f"unknown --what item(s): {', '.join(sorted(unknown))}")
    until = args.until or datetime.now(UTC)
    since = args.since or (until - timedelta(days=1))
    out: dict = {}
    client = registry.open_session(settings, counter_store)
    async with client:
        if "clock" in what:
            out["clock"] = await client.read_clock()
        if "registers" in what:
            codes = (
                [c.strip() for c in args.registers.split(",")]
                if args.registers
                else default_registers(settings)
            )
            out["registers"] = await client.read_registers(codes)
        if "profile" in what:
            out["profile"] = await client.read_load_profile(args.profile, since, until)
        if "events" in what:
            out["events"] = await client.read_events(args.event_log, since, until)
        if "instantaneous" in what:
            out["instantaneous"] = await client.read_instantaneous()
        if "relay" in what:
            out["relay"] = await client.relay_state()
    if client.exchange_log is not None:
        out["exchange_log"] = client.exchange_log
    return out


def main(argv: list[str] | None = None, *, counter_store=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        result = asyncio.run(run(args, settings, counter_store))
    except ProtocolError as ex:
        kind = type(ex).__name__
        retry = "retryable" if ex.retryable else "permanent"
        print(f"read_meter: {kind} ({retry}): {ex}", file=sys.stderr)
        return 2
    except ValueError as ex:
        print(f"read_meter: invalid argument: {ex}", file=sys.stderr)
        return 2
    print(json.dumps(to_jsonable(result), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
