"""Encode-then-decode round trips over every token kind, both algorithms, all base dates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vending.sts.amount import MAX_UNITS, representable_units
from vending.sts.errors import CrcError, TokenFormatError, UnsupportedTokenError
from vending.sts.tid import TID_MAX, base_datetime
from vending.sts.tokens import (
    CREDIT_KINDS,
    DecoderKey,
    TokenKind,
    combine_key_change,
    decode_token,
    encode_clear_credit,
    encode_clear_tamper,
    encode_credit,
    encode_key_change,
    encode_max_power,
    encode_meter_test,
    encode_phase_unbalance,
    encode_set_tariff_rate,
    encode_water_meter_factor,
    transpose_class,
    untranspose_class,
)

keys = st.one_of(
    st.binary(min_size=8, max_size=8).map(lambda b: DecoderKey(b, "07")),
    st.binary(min_size=16, max_size=16).map(lambda b: DecoderKey(b, "11")),
)
base_dates = st.sampled_from([1993, 2014, 2035])
tids = st.integers(0, TID_MAX)
rnds = st.integers(0, 15)


@settings(max_examples=150)
@given(
    keys, base_dates, tids, rnds, st.sampled_from(sorted(CREDIT_KINDS)), st.integers(1, MAX_UNITS)
)
def test_credit_round_trip(key, base_date, tid, rnd, kind, tenths):
    when = base_datetime(base_date) + timedelta(minutes=tid, seconds=30)
    amount = f"{tenths // 10}.{tenths % 10}"
    tok = encode_credit(key, kind, amount, issued_at=when, base_date=base_date, rnd=rnd)
    assert len(tok.digits) == 20
    back = decode_token(tok.grouped, key, base_date=base_date)
    assert (back.kind, back.token_class, back.subclass) == (kind, 0, kind.subclass)
    assert (back.tid, back.rnd) == (tid, rnd)
    assert back.amount == tok.amount
    assert int(back.amount * 10) == representable_units(tenths)
    assert back.issued_at == when.replace(second=0)


@settings(max_examples=100)
@given(keys, base_dates, tids, rnds, st.integers(0, MAX_UNITS), st.integers(0, 0xFFFF))
def test_management_round_trip(key, base_date, tid, rnd, watts, raw16):
    kw = {"issued_at": tid, "base_date": base_date, "rnd": rnd}
    cases = [
        (encode_max_power(key, watts, **kw), "watts", representable_units(watts)),
        (encode_phase_unbalance(key, watts, **kw), "watts", representable_units(watts)),
        (encode_clear_credit(key, raw16, **kw), "register", raw16),
        (encode_set_tariff_rate(key, raw16, **kw), "rate", raw16),
        (encode_water_meter_factor(key, raw16, **kw), "value", raw16),
        (encode_clear_tamper(key, **kw), "value", 0),
    ]
    for tok, field, expected in cases:
        back = decode_token(tok.digits, key, base_date=base_date)
        assert back.kind is tok.kind and back.token_class == 2
        assert (back.tid, back.rnd, getattr(back, field)) == (tid, rnd, expected)


@settings(max_examples=100)
@given(
    keys,
    st.integers(1, 9),
    st.integers(0, 99),
    st.integers(0, 3),
    st.integers(0, 255),
    st.booleans(),
    st.integers(0, 999_999),
    st.data(),
)
def test_key_change_round_trip(key, krn, ti, kt, ken, rollover, sgc, data):
    new = data.draw(st.binary(min_size=len(key.key), max_size=len(key.key)))
    tokens = encode_key_change(
        key, new, new_krn=krn, new_ti=ti, new_key_type=kt, ken=ken, rollover=rollover,
        new_sgc=sgc,
    )  # fmt: skip
    assert len(tokens) == (2 if key.ea == "07" else 4)
    change = combine_key_change([decode_token(t.digits, key) for t in tokens])
    assert (change.new_key, change.krn, change.tariff_index) == (new, krn, ti)
    assert (change.key_type, change.ken, change.rollover) == (kt, ken, rollover)
    assert change.sgc == (None if key.ea == "07" else sgc)


@given(st.integers(0, (1 << 36) - 1), st.integers(0, 255))
def test_meter_test_round_trip(control, mfr):
    back = decode_token(encode_meter_test(control, mfr).digits)
    assert (back.kind, back.control, back.manufacturer_code) == (TokenKind.METER_TEST, control, mfr)


@given(st.integers(0, 3), st.integers(0, (1 << 64) - 1))
def test_class_transposition(token_class, block):
    number = transpose_class(token_class, block)
    assert number < 1 << 66
    assert untranspose_class(number) == (token_class, block)


def test_wrong_key_or_typo_fails_crc(sta_key):
    tok = encode_credit(sta_key, "credit-electricity", 5, issued_at=100, base_date=None, rnd=1)
    other = DecoderKey(bytes(8))
    with pytest.raises(CrcError):
        decode_token(tok.digits, other)
    typo = tok.digits[:-1] + str((int(tok.digits[-1]) + 1) % 10)
    with pytest.raises(CrcError):
        decode_token(typo, sta_key)


@pytest.mark.parametrize("text", ["1234", "7378697629483820646x", "73786976294838206464", ""])
def test_token_format_errors(text):
    with pytest.raises(TokenFormatError):
        decode_token(text, DecoderKey(bytes(8)))


def test_reserved_class_3():
    with pytest.raises(UnsupportedTokenError):
        decode_token(f"{transpose_class(3, 0):020d}", DecoderKey(bytes(8)))


def test_key_change_needs_matching_sizes_and_sgc(sta_key):
    with pytest.raises(UnsupportedTokenError):
        encode_key_change(sta_key, bytes(16), new_krn=1, new_ti=1, new_key_type=2)
    misty_key = DecoderKey(bytes(16), "11")
    with pytest.raises(ValueError, match="supply group code"):
        encode_key_change(misty_key, bytes(16), new_krn=1, new_ti=1, new_key_type=2)
