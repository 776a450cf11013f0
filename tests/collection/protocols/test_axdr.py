from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collection.protocols.dlms import axdr
from collection.protocols.dlms.cosem import scale
from collection.protocols.errors import MalformedResponse


def test_decode_structure():
    data = bytes.fromhex("0202 0f fe 16 1e")
    assert axdr.decode_all(data) == [-2, 30]


def test_decode_profile_like():
    dt = axdr.encode_datetime(datetime(2024, 1, 1, 0, 15, tzinfo=UTC))
    row = axdr.enc_struct(axdr.enc_octets(dt), axdr.enc_uint32(5), axdr.enc_uint32(7))
    value = axdr.decode_all(axdr.enc_array([row, row]))
    assert value == [[dt, 5, 7], [dt, 5, 7]]
    assert axdr.decode_datetime(value[0][0]) == datetime(2024, 1, 1, 0, 15, tzinfo=UTC)


def test_datetime_deviation():
    # local 13:00 with deviation -60 (CET: UTC = local - 60 min) -> 12:00 UTC
    raw = bytes.fromhex("07e8 06 0f 06 0d 00 00 00 ffc4 00")
    assert axdr.decode_datetime(raw) == datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
    unspecified = bytes.fromhex("07e8 06 0f 06 0d 00 00 00 8000 00")
    assert axdr.decode_datetime(unspecified) == datetime(2024, 6, 15, 13, 0, tzinfo=UTC)
    assert axdr.decode_datetime(bytes.fromhex("ffff ff ff ff ff ff ff ff 8000 ff")) is None


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)))
def test_datetime_roundtrip(dt):
    dt = dt.replace(tzinfo=UTC, microsecond=(dt.microsecond // 10000) * 10000)
    assert axdr.decode_datetime(axdr.encode_datetime(dt)) == dt


def test_gurux_agrees_on_encoding():
    from gurux_dlms import GXByteBuffer
    from gurux_dlms.enums import DataType
    from gurux_dlms.internal._GXCommon import _GXCommon

    b = GXByteBuffer()
    _GXCommon.setData(None, b, DataType.UINT32, 123456)
    assert bytes(b.array()) == axdr.enc_uint32(123456)


def test_scale():
    assert scale(12345, -1) == Decimal("1234.5")
    assert scale(12, 3) == Decimal(12000)
    assert str(scale(12, 3)) == "12000"
    assert scale(None, 0) is None
    assert scale(True, 0) is None


def test_truncated():
    with pytest.raises(MalformedResponse):
        axdr.decode_all(b"\x01\x05\x11\x01")
    with pytest.raises(MalformedResponse):
        axdr.decode_all(b"\x11\x01\x00")


def test_deep_nesting_rejected():
    with pytest.raises(MalformedResponse):
        axdr.decode_all(b"\x02\x01" * 100 + b"\x00")


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_garbage(data):
    try:
        axdr.decode_all(data)
    except MalformedResponse:
        pass


@given(st.binary(max_size=20))
def test_datetime_garbage(data):
    try:
        axdr.decode_datetime(data)
    except MalformedResponse:
        pass
