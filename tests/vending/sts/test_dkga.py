"""Decoder key generation DKGA02 and DKGA04."""

from __future__ import annotations

import pytest

from vending.sts.dkga import dkga02, dkga04
from vending.sts.errors import InvalidKeyError, StsError, StsValueError
from vending.sts.pan import MeterPan

from .conftest import PAN_A, VK02, VK04


def test_dkga02_reference_keys():
    pan = MeterPan.parse(PAN_A)
    assert dkga02(VK02, pan, sgc=123456, ti=1, krn=1, key_type=2).hex() == "e653341f9d5bf36f"


def test_dkga02_common_key_ignores_meter_number():
    a = dkga02(VK02, MeterPan.parse(PAN_A), sgc=1, ti=1, krn=1, key_type=3)
    b = dkga02(VK02, MeterPan.parse("600727041234567843"), sgc=1, ti=1, krn=1, key_type=3)
    assert a == b


def test_dkga04_lengths_depend_on_algorithm():
    pan = MeterPan.parse(PAN_A)
    common = {"sgc": 123457, "ti": 1, "krn": 1, "key_type": 2, "base_date": 1993}
    assert len(dkga04(VK04, pan, ea="07", **common)) == 8
    assert len(dkga04(VK04, pan, ea="11", **common)) == 16
    # The base date and the algorithm are part of the derivation.
    assert dkga04(VK04, pan, ea="11", **common) != dkga04(
        VK04, pan, ea="11", **{**common, "base_date": 2014}
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sgc": 1_000_000},
        {"sgc": -1},
        {"ti": 100},
        {"krn": 0},
        {"krn": 10},
        {"key_type": 4},
    ],
)
def test_parameter_errors(kwargs):
    params = {"sgc": 123456, "ti": 1, "krn": 1, "key_type": 2, **kwargs}
    with pytest.raises(StsValueError):
        dkga02(VK02, MeterPan.parse(PAN_A), **params)


def test_key_length_errors():
    pan = MeterPan.parse(PAN_A)
    with pytest.raises(InvalidKeyError):
        dkga02(VK04, pan, sgc=1, ti=1, krn=1, key_type=2)
    with pytest.raises(InvalidKeyError):
        dkga04(VK02, pan, sgc=1, ti=1, krn=1, key_type=2, base_date=1993, ea="11")
    with pytest.raises(StsError):
        dkga04(VK04, pan, sgc=1, ti=1, krn=1, key_type=2, base_date=2000, ea="11")
    with pytest.raises(StsError):
        dkga04(VK04, pan, sgc=1, ti=1, krn=1, key_type=2, base_date=1993, ea="09")
