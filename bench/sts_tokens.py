"""Benchmark of the STS token engine: tokens per second per core for EA07 and EA11.

Measures, on one core, (a) full token generation including decoder key derivation
(DKGA02 + EA07, DKGA04 + EA11) and (b) encrypt-only token generation with a fixed key.
As a same-run baseline it times DES-ECB (EA07 figures) and AES-ECB (EA11 figures) from
``cryptography`` on the same number of 8/16-byte blocks, so that a ratio independent of
the machine's speed can be printed. Each figure is the median of A/B pairs (engine,
baseline, alternating). Every generated token is decoded again and checked, so a fast
but wrong engine fails the benchmark.

Run: ``.venv/bin/python bench/sts_tokens.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES  # noqa: E402
except ImportError:  # pragma: no cover
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # noqa: E402

from vending.sts import misty1, sta  # noqa: E402
from vending.sts.dkga import dkga02, dkga04  # noqa: E402
from vending.sts.pan import MeterPan, luhn_check_digit  # noqa: E402
from vending.sts.tokens import DecoderKey, decode_token, encode_credit  # noqa: E402

VK02 = bytes.fromhex("abababababababab")
VK04 = bytes.fromhex("abababababababab949494949494949401234567")
START = datetime(2026, 1, 1, tzinfo=UTC)


def _pans(count: int) -> list[MeterPan]:
    out = []
    n = 0
    while len(out) < count:
        body = f"{n:010d}"
        out.append(MeterPan("600727", body + luhn_check_digit(body)))
        n += 1
    return out


def full_ea07(pans: list[MeterPan]) -> list[tuple[str, DecoderKey]]:
    sta.clear_cache()  # every meter gets a fresh key schedule, as in production
    out = []
    for i, pan in enumerate(pans):
        key = DecoderKey(dkga02(VK02, pan, sgc=123456, ti=1, krn=1, key_type=2))
        tok = encode_credit(
            key, "credit-electricity", "12.5", issued_at=START + timedelta(minutes=i),
            base_date=2014, rnd=i & 15,
        )  # fmt: skip
        out.append((tok.digits, key))
    return out


def full_ea11(pans: list[MeterPan]) -> list[tuple[str, DecoderKey]]:
    misty1._cipher.cache_clear()  # every meter gets a fresh key schedule, as in production
    out = []
    for i, pan in enumerate(pans):
        raw = dkga04(VK04, pan, sgc=123457, ti=1, krn=1, key_type=2, base_date=2014, ea="11")
        key = DecoderKey(raw, "11")
        tok = encode_credit(
            key, "credit-electricity", "12.5", issued_at=START + timedelta(minutes=i),
            base_date=2014, rnd=i & 15,
        )  # fmt: skip
        out.append((tok.digits, key))
    return out


def encrypt_only(key: DecoderKey, count: int) -> list[tuple[str, DecoderKey]]:
    out = []
    for i in range(count):
        tok = encode_credit(
            key, "credit-electricity", "12.5", issued_at=i, base_date=None, rnd=i & 15
        )
        out.append((tok.digits, key))
    return out


def des_baseline(count: int) -> None:
    enc = Cipher(TripleDES(VK02 * 3), modes.ECB()).encryptor()
    block = bytes(8)
    for _ in range(count):
        block = enc.update(block)


def aes_baseline(count: int) -> None:
    enc = Cipher(algorithms.AES(bytes(16)), modes.ECB()).encryptor()
    block = bytes(16)
    for _ in range(count):
        block = enc.update(block)


def verify(results: list[tuple[str, DecoderKey]]) -> None:
    """Decode every token: a fast wrong result must fail the benchmark."""
    for i, (digits, key) in enumerate(results):
        back = decode_token(digits, key)
        assert back.amount is not None and str(back.amount) == "12.5", digits
        assert back.rnd == i & 15, digits


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def measure(name, engine, baseline, count, pairs, baseline_name):
    rates, base_rates = [], []
    for _ in range(pairs):
        dt, result = timed(engine)
        verify(result)  # outside the timed section
        rates.append(count / dt)
        bdt, _ = timed(baseline, count)
        base_rates.append(count / bdt)
    value = statistics.median(rates)
    base = statistics.median(base_rates)
    return {
        "bench": "sts_tokens",
        "metric": name,
        "value": round(value, 1),
        "unit": "tokens/s/core",
        "baseline": {"name": baseline_name, "value": round(base, 1), "unit": "blocks/s/core"},
        "ratio": round(value / base, 6),
        "pairs": pairs,
        "n": count,
        "cpu_count": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (well under a minute)")
    args = parser.parse_args()
    count, pairs = (1000, 3) if args.quick else (5000, 5)
    pans = _pans(count)
    sta_key = DecoderKey(bytes.fromhex("e653341f9d5bf36f"))
    misty_key = DecoderKey(bytes.fromhex("51664ac6ea6a511f8708b082aa3de927"), "11")
    figures = [
        measure("ea07_dkga02_full", lambda: full_ea07(pans), des_baseline, count, pairs,
                "des_ecb_block"),
        measure("ea07_encrypt_only", lambda: encrypt_only(sta_key, count), des_baseline, count,
                pairs, "des_ecb_block"),
        measure("ea11_dkga04_full", lambda: full_ea11(pans), aes_baseline, count, pairs,
                "aes_ecb_block"),
        measure("ea11_encrypt_only", lambda: encrypt_only(misty_key, count), aes_baseline,
                count, pairs, "aes_ecb_block"),
    ]  # fmt: skip
    for fig in figures:
        print(json.dumps(fig, sort_keys=True))
    mode = "quick" if args.quick else "full"
    print(
        f"\nSTS token benchmark ({mode}; n={count}, median of {pairs} A/B pairs, "
        f"1 core used, os.cpu_count()={os.cpu_count()})"
    )
    for fig in figures:
        print(
            f"  {fig['metric']:<20} {fig['value']:>10.0f} tokens/s   baseline "
            f"{fig['baseline']['name']} {fig['baseline']['value']:>12.0f}/s   "
            f"ratio {fig['ratio']:.4f}"
        )
    print("  all generated tokens decoded and verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
