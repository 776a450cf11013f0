"""Amount encoding: exponent/mantissa, range limits and rounding up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vending.sts.amount import (
    MAX_UNITS,
    decode_units,
    encode_units,
    representable_units,
    tenths_from_amount,
)
from vending.sts.errors import AmountRangeError, StsError
from vending.sts.tokens import TokenKind, encode_credit, encode_max_power

from .conftest import key02, utc


@pytest.mark.parametrize(
    ("units", "field"),
    [
        (0, 0),
        (1, 1),
        (16383, 16383),
        (16384, 1 << 14),
        (16394, 1 << 14 | 1),
        (180214, 1 << 14 | 16383),
        (180224, 2 << 14),
        (1818624, 3 << 14),
        (MAX_UNITS, 3 << 14 | 16383),
    ],
)
def test_exact_values(units, field):
    assert encode_units(units) == field
    assert decode_units(field) == units


@pytest.mark.parametrize(
    ("units", "carried"),
    [
        (16385, 16394),  # exponent 1 steps by 10, rounds up
        (180215, 180224),  # gap between the e=1 and e=2 ranges rounds up to e=2
        (180223, 180224),
        (180225, 180324),
        (1818623, 1818624),
        (MAX_UNITS - 1, MAX_UNITS),
    ],
)
def test_rounds_up(units, carried):
    assert representable_units(units) == carried


@given(st.integers(0, MAX_UNITS))
def test_never_credits_less(units):
    carried = representable_units(units)
    assert units <= carried
    assert decode_units(encode_units(carried)) == carried


def test_out_of_range():
    with pytest.raises(AmountRangeError, match="exceeds"):
        encode_units(MAX_UNITS + 1)
    with pytest.raises(AmountRangeError, match="negative"):
        encode_units(-1)
    with pytest.raises(AmountRangeError):
        encode_units(1.5)  # type: ignore[arg-type]
    assert issubclass(AmountRangeError, ValueError)
    assert issubclass(AmountRangeError, StsError)


@pytest.mark.parametrize(
    ("amount", "tenths"),
    [("0.1", 1), ("0.01", 1), ("1.82", 19), (0.1, 1), (10, 100), (Decimal("1820162.4"), MAX_UNITS)],
)
def test_tenths_round_up(amount, tenths):
    assert tenths_from_amount(amount) == tenths


@pytest.mark.parametrize("amount", ["1820162.5", "-0.1", "nan", "inf", "abc", None, True])
def test_tenths_errors(amount):
    with pytest.raises(AmountRangeError):
        tenths_from_amount(amount)


def test_credit_token_boundaries():
    k = key02()
    kw = {"issued_at": utc(2020, 1, 1), "base_date": 1993, "rnd": 0}
    e = TokenKind.CREDIT_ELECTRICITY
    assert encode_credit(k, e, "1820162.4", **kw).amount == Decimal("1820162.4")
    assert encode_credit(k, e, "18022.3", **kw).amount == Decimal("18022.4")
    with pytest.raises(AmountRangeError, match="exceeds"):
        encode_credit(k, e, "1820162.5", **kw)
    with pytest.raises(AmountRangeError, match="greater than zero"):
        encode_credit(k, e, "0", **kw)
    with pytest.raises(AmountRangeError, match="negative"):
        encode_credit(k, e, "-5", **kw)
    with pytest.raises(AmountRangeError, match="whole number"):
        encode_max_power(k, "10.5", **kw)  # type: ignore[arg-type]
    with pytest.raises(AmountRangeError):
        encode_max_power(k, MAX_UNITS + 1, **kw)
