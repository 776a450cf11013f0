"""Shared helpers for the STS engine tests (no Django needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vending.sts.dkga import dkga02, dkga04
from vending.sts.pan import MeterPan
from vending.sts.tokens import DecoderKey

VK02 = bytes.fromhex("abababababababab")
VK04 = bytes.fromhex("abababababababab949494949494949401234567")
PAN_A = "600727000000000009"
PAN_B = "000001000000000082"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def key02(
    pan: str = PAN_A, *, sgc: int = 123456, ti: int = 1, krn: int = 1, vk: bytes = VK02
) -> DecoderKey:
    return DecoderKey(dkga02(vk, MeterPan.parse(pan), sgc=sgc, ti=ti, krn=krn, key_type=2))


def key04(
    pan: str = PAN_A,
    *,
    base_date: int = 1993,
    krn: int = 1,
    ti: int = 1,
    sgc: int = 123457,
    ea: str = "11",
) -> DecoderKey:
    raw = dkga04(
        VK04,
        MeterPan.parse(pan),
        sgc=sgc,
        ti=ti,
        krn=krn,
        key_type=2,
        base_date=base_date,
        ea=ea,
    )
    return DecoderKey(raw, ea)


@pytest.fixture
def sta_key() -> DecoderKey:
    return key02()
