"""Command line front end of the STS token engine (``python -m vending.sts``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import IO, NoReturn

from .dkga import EA07, EA11, dkga02, dkga04
from .errors import StsError
from .pan import MeterPan
from .tokens import (
    REGISTER_ALL,
    DecoderKey,
    StsToken,
    TokenKind,
    decode_token,
    encode_clear_credit,
    encode_clear_tamper,
    encode_credit,
    encode_key_change,
    encode_max_power,
    encode_phase_unbalance,
    encode_set_tariff_rate,
    parse_hex_key,
)

TYPES = (
    "credit-electricity",
    "credit-water",
    "credit-gas",
    "credit-time",
    "credit-currency",
    "max-power",
    "clear-credit",
    "clear-tamper",
    "set-tariff-rate",
    "phase-unbalance",
    "key-change",
)


class _UsageError(Exception):
    """Raised instead of argparse's print-usage-and-exit, so errors stay one line."""


class _Parser(argparse.ArgumentParser):
    out: IO[str] | None = None  # where --help goes (the caller's stdout)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        if message:
            (_Parser.out or file or sys.stdout).write(message)


def _int(text: str) -> int:
    """Decimal, leading zeros allowed (tariff index `01`, supply group `000001`), or 0x-hex
    (register masks are usually written in hex)."""
    digits = text.strip()
    try:
        if digits.lower().startswith(("0x", "-0x", "+0x")):
            return int(digits, 16)
        return int(digits, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sts", description="STS (IEC 62055-41) prepaid token engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    enc = sub.add_parser("encode", help="generate token(s) for a meter")
    enc.add_argument("--ea", choices=(EA07, EA11), required=True)
    enc.add_argument("--dkga", choices=("02", "04"), required=True)
    enc.add_argument("--vending-key", required=True, help="vending key in hex")
    enc.add_argument("--pan", required=True, help="11/13-digit meter number or 18-digit PAN")
    enc.add_argument("--sgc", type=_int, required=True, help="supply group code")
    enc.add_argument("--ti", type=_int, required=True, help="tariff index")
    enc.add_argument("--krn", type=_int, required=True, help="key revision number")
    enc.add_argument("--key-type", type=_int, required=True)
    enc.add_argument("--base-date", type=int, choices=(1993, 2014, 2035), required=True)
    enc.add_argument("--time", help="time of issue, ISO 8601 with offset (default: now, UTC)")
    enc.add_argument("--rnd", type=_int, help="4-bit random number (default: random)")
    enc.add_argument("--type", choices=TYPES, required=True, dest="token_type")
    enc.add_argument("--amount", help="credit amount in units (kWh, m3, ...), 0.1 resolution")
    enc.add_argument("--watts", type=_int, help="power limit in watts")
    enc.add_argument(
        "--register", type=_int, help=f"clear-credit register (default {REGISTER_ALL:#x})"
    )
    enc.add_argument("--rate", type=_int, help="tariff rate (raw 16-bit value)")
    enc.add_argument("--new-vending-key", help="key change: new vending key (default: same)")
    enc.add_argument("--new-sgc", type=_int, help="key change: new SGC (default: same)")
    enc.add_argument("--new-ti", type=_int, help="key change: new tariff index (default: same)")
    enc.add_argument("--new-krn", type=_int, help="key change: new KRN (default: same)")
    enc.add_argument("--new-key-type", type=_int, help="key change: new key type (default: same)")
    enc.add_argument(
        "--new-base-date", type=int, choices=(1993, 2014, 2035), help="key change: new base date"
    )
    enc.add_argument("--new-ken", type=_int, default=255, help="key change: key expiry number")
    enc.add_argument(
        "--rollover",
        action="store_true",
        help="key change: set the TID rollover bit (implied by a new base date)",
    )
    enc.add_argument("--json", action="store_true", help="machine-readable output")

    dec = sub.add_parser("decode", help="decode and verify a token")
    dec.add_argument("--token", required=True, help="the 20 token digits")
    dec.add_argument("--decoder-key", help="decoder key in hex (not needed for class 1)")
    dec.add_argument("--ea", choices=(EA07, EA11), default=EA07)
    dec.add_argument("--base-date", type=int, choices=(1993, 2014, 2035))
    dec.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _parse_time(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _UsageError(f"--time: not an ISO 8601 date/time: {text!r}") from None
    if when.tzinfo is None:
        raise _UsageError("--time must include a UTC offset, e.g. 2025-05-05T05:05Z")
    return when


def _derive(args: argparse.Namespace, *, vending_hex: str, sgc: int, ti: int, krn: int,
            key_type: int, base_date: int) -> DecoderKey:  # fmt: skip
    vending_key = parse_hex_key(vending_hex, "vending key")
    pan = MeterPan.parse(args.pan)
    if args.dkga == "02":
        if args.ea != EA07:
            raise _UsageError("DKGA02 yields a 64-bit key and only works with --ea 07")
        raw = dkga02(vending_key, pan, sgc=sgc, ti=ti, krn=krn, key_type=key_type)
    else:
        raw = dkga04(
            vending_key, pan, sgc=sgc, ti=ti, krn=krn, key_type=key_type,
            base_date=base_date, ea=args.ea,
        )  # fmt: skip
    return DecoderKey(raw, args.ea)


def _forbid(args: argparse.Namespace, allowed: set[str]) -> None:
    options = {"amount", "watts", "register", "rate"}
    for name in sorted(options - allowed):
        if getattr(args, name) is not None:
            raise _UsageError(f"--{name} does not apply to --type {args.token_type}")


def _encode(args: argparse.Namespace) -> tuple[list[StsToken], dict[str, object]]:
    key = _derive(
        args, vending_hex=args.vending_key, sgc=args.sgc, ti=args.ti, krn=args.krn,
        key_type=args.key_type, base_date=args.base_date,
    )  # fmt: skip
    meta: dict[str, object] = {"decoder_key": key.hex, "ea": args.ea, "dkga": args.dkga}
    kind = args.token_type
    common = {"issued_at": _parse_time(args.time), "base_date": args.base_date, "rnd": args.rnd}
    if kind.startswith("credit-"):
        _forbid(args, {"amount"})
        if args.amount is None:
            raise _UsageError(f"--type {kind} needs --amount")
        return [encode_credit(key, TokenKind(kind), args.amount, **common)], meta
    if kind in ("max-power", "phase-unbalance"):
        _forbid(args, {"watts"})
        if args.watts is None:
            raise _UsageError(f"--type {kind} needs --watts")
        fn = encode_max_power if kind == "max-power" else encode_phase_unbalance
        return [fn(key, args.watts, **common)], meta
    if kind == "clear-credit":
        _forbid(args, {"register"})
        register = REGISTER_ALL if args.register is None else args.register
        return [encode_clear_credit(key, register, **common)], meta
    if kind == "set-tariff-rate":
        _forbid(args, {"rate"})
        if args.rate is None:
            raise _UsageError("--type set-tariff-rate needs --rate")
        return [encode_set_tariff_rate(key, args.rate, **common)], meta
    if kind == "clear-tamper":
        _forbid(args, set())
        return [encode_clear_tamper(key, **common)], meta
    _forbid(args, set())
    return _key_change(args, key, meta)


def _key_change(
    args: argparse.Namespace, key: DecoderKey, meta: dict[str, object]
) -> tuple[list[StsToken], dict[str, object]]:
    new = {
        "vending_hex": args.new_vending_key or args.vending_key,
        "sgc": args.sgc if args.new_sgc is None else args.new_sgc,
        "ti": args.ti if args.new_ti is None else args.new_ti,
        "krn": args.krn if args.new_krn is None else args.new_krn,
        "key_type": args.key_type if args.new_key_type is None else args.new_key_type,
        "base_date": args.base_date if args.new_base_date is None else args.new_base_date,
    }
    new_key = _derive(args, **new)
    # A key on a later base date restarts the TIDs, so the meter must clear its history.
    rollover = args.rollover or new["base_date"] != args.base_date
    tokens = encode_key_change(
        key, new_key, new_krn=new["krn"], new_ti=new["ti"], new_key_type=new["key_type"],
        ken=args.new_ken, rollover=rollover, new_sgc=new["sgc"],
    )  # fmt: skip
    meta.update(new_decoder_key=new_key.hex, rollover=rollover, new_base_date=new["base_date"])
    return list(tokens), meta


def _print_tokens(tokens: list[StsToken], meta: dict[str, object], out: IO[str]) -> None:
    for index, token in enumerate(tokens, 1):
        label = f"token {index}/{len(tokens)}" if len(tokens) > 1 else "token"
        out.write(f"{label} ({token.kind.value}): {token.grouped}\n")
        out.write(f"{' ' * len(label)}   plain: {token.digits}\n")
        if token.amount is not None:
            out.write(f"  amount credited: {token.amount}\n")
        if token.watts is not None:
            out.write(f"  limit: {token.watts} W\n")
        if token.tid is not None:
            out.write(f"  TID: {token.tid}  RND: {token.rnd}\n")
    out.write(f"decoder key: {meta['decoder_key']}\n")
    if "new_decoder_key" in meta:
        out.write(f"new decoder key: {meta['new_decoder_key']}\n")
        out.write(f"rollover: {'yes' if meta['rollover'] else 'no'}\n")


def _decode(args: argparse.Namespace) -> StsToken:
    key = None
    if args.decoder_key is not None:
        key = DecoderKey(parse_hex_key(args.decoder_key, "decoder key"), args.ea)
    return decode_token(args.token, key, base_date=args.base_date)


def main(argv: list[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 invalid input)."""
    out = stdout if stdout is not None else sys.stdout
    parser = _build_parser()
    _Parser.out = out
    try:
        args = parser.parse_args(argv)
        if args.command == "encode":
            tokens, meta = _encode(args)
            if args.json:
                payload = {**meta, "tokens": [t.as_dict() for t in tokens]}
                out.write(json.dumps(payload, sort_keys=True) + "\n")
            else:
                _print_tokens(tokens, meta, out)
        else:
            token = _decode(args)
            if args.json:
                out.write(json.dumps({"crc_ok": True, **token.as_dict()}, sort_keys=True) + "\n")
            else:
                for name, value in token.as_dict().items():
                    out.write(f"{name}: {value}\n")
                out.write("crc_check: ok\n")
    except (_UsageError, argparse.ArgumentError) as exc:
        sys.stderr.write(f"sts: error: {exc}\n")
        return 2
    except StsError as exc:
        sys.stderr.write(f"sts: error: {exc}\n")
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    return 0
