"""MeterPAN layouts and Luhn checks; TID computation and range errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from vending.sts.errors import PanError, StsValueError, TidRangeError
from vending.sts.pan import MeterPan, luhn_check_digit
from vending.sts.tid import TID_MAX, datetime_from_tid, range_end, tid_from_datetime

from .conftest import utc


@pytest.mark.parametrize(
    ("text", "pan"),
    [
        ("00000000000", "600727000000000009"),
        ("04123456784", "600727041234567843"),
        ("0412-3456 784", "600727041234567843"),
        ("0100000000008", "000001000000000082"),
        ("600727041234567843", "600727041234567843"),
        ("000001000000000082", "000001000000000082"),
    ],
)
def test_pan_layouts(text, pan):
    assert MeterPan.parse(text).pan == pan


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("04123456785", "Luhn"),  # bad meter-number check digit
        ("600727041234567844", "Luhn"),  # bad PAN check digit
        ("123456041234567843", "IIN"),
        ("1234567", "digits"),
        ("0412345678x", "only digits"),
        ("", "only digits"),
    ],
)
def test_pan_errors(text, message):
    with pytest.raises(PanError, match=message):
        MeterPan.parse(text)


def test_luhn():
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("60072700000000000") == "9"


def test_tid_values():
    assert tid_from_datetime(utc(1993, 1, 1), 1993) == 0
    assert tid_from_datetime(utc(2020, 6, 15, 12, 34, 59), 1993) == 14439634
    assert tid_from_datetime(utc(2025, 5, 5, 5, 5), 2014) == 5964785
    offset = timezone(timedelta(hours=3))
    assert tid_from_datetime(datetime(2025, 5, 5, 8, 5, tzinfo=offset), 2014) == 5964785
    assert datetime_from_tid(14439634, 1993) == utc(2020, 6, 15, 12, 34)


def test_tid_range_1993_ended_2024_11_24():
    end = range_end(1993)
    assert end.date().isoformat() == "2024-11-24"
    assert tid_from_datetime(end, 1993) == TID_MAX
    with pytest.raises(TidRangeError, match="2024-11-24"):
        tid_from_datetime(end + timedelta(microseconds=1), 1993)
    with pytest.raises(TidRangeError):
        tid_from_datetime(utc(2026, 1, 1), 1993)


def test_tid_errors():
    with pytest.raises(TidRangeError, match="before base date"):
        tid_from_datetime(utc(2013, 12, 31, 23, 59), 2014)
    with pytest.raises(StsValueError, match="timezone-aware"):
        tid_from_datetime(datetime(2020, 1, 1), 1993)
    with pytest.raises(StsValueError, match="base date"):
        tid_from_datetime(utc(2020, 1, 1), 2000)
    with pytest.raises(TidRangeError):
        datetime_from_tid(TID_MAX + 1, 1993)
