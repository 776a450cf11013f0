"""The shared DLMS codec against the outside oracles, dlms-cosem and gurux-dlms.

A-XDR and COSEM date-time are generated at random (hypothesis) and must read the same in
our codec and in both libraries, in both directions.  The date-time cases pin the two
drift bugs the client and the simulator once had between them: the deviation's sign
(Blue Book: minutes from local time to UTC, ``utc = local + deviation``) and an hour of
0xFF (not specified: no instant, in the client and the simulator alike).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from dlms_cosem import dlms_data as D
from dlms_cosem import time as cosem_time
from gurux_dlms import GXByteBuffer, GXDateTime
from gurux_dlms.enums import DataType
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.internal._GXDataInfo import _GXDataInfo
from hypothesis import given, settings
from hypothesis import strategies as st

from collection.protocols.dlms import axdr
from collection.protocols.errors import MalformedResponse

NOON = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
# Deviations of real time zones: UTC+14:00 (-840) to UTC-12:00 (+720), quarter hours.
DEVIATIONS = st.integers(-56, 48).map(lambda q: q * 15)
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2098, 12, 30), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=dt.microsecond // 10000 * 10000))


def _gurux(raw: bytes):
    return _GXCommon.getData(GXDLMSSettings(False, None), GXByteBuffer(raw), _GXDataInfo())


# -- date-time: the drift bugs --------------------------------------------------------------


def test_deviation_survives_its_own_parser():
    """The simulator wrote UTC wall time beside a deviation: 12:00 came back 13:00."""
    raw = axdr.encode_datetime(NOON, deviation=60)
    assert raw[5] == 11  # UTC-01:00: local wall time is an hour behind
    assert axdr.decode_datetime(raw) == NOON


def test_deviation_sign_is_the_blue_books():
    # CET (UTC+01:00) is deviation -60: local 13:00 is 12:00 UTC.
    raw = bytes.fromhex("07e8 06 0f 06 0d 00 00 00 ffc4 00")
    assert axdr.decode_datetime(raw) == NOON
    cet = datetime(2024, 6, 15, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert cosem_time.datetime_to_bytes(cet)[9:11] == raw[9:11]


def test_unspecified_hour_is_no_instant():
    """0xFF in the hour was None in the client and 00:00 in the simulator."""
    raw = bytearray(axdr.encode_datetime(NOON))
    raw[5] = axdr.NOT_SPECIFIED
    assert axdr.decode_datetime(bytes(raw)) is None


def test_wildcard_dates_are_no_instant():
    for at, value in ((0, 0xFF), (2, 0xFF), (2, 0xFE), (3, 0xFF), (3, 0xFE)):
        raw = bytearray(axdr.encode_datetime(NOON))
        raw[at] = value
        if at == 0:
            raw[1] = 0xFF
        assert axdr.decode_datetime(bytes(raw)) is None


def test_deviation_outside_any_time_zone_is_malformed():
    raw = bytearray(axdr.encode_datetime(NOON))
    raw[9:11] = (900).to_bytes(2, "big", signed=True)
    with pytest.raises(MalformedResponse):
        axdr.decode_datetime(bytes(raw))
    with pytest.raises(ValueError):
        axdr.encode_datetime(NOON, deviation=-900)


def test_simulator_clock_refuses_an_unspecified_hour():
    from collection.protocols.dlms.apdu import DAR_TYPE_UNMATCHED
    from collection.simulators.dlms.meter import MeterState, SimulatedMeter
    from collection.simulators.dlms.objects import OBJECTS, AccessError, Ctx

    clock = OBJECTS[bytes((0, 0, 1, 0, 0, 255))]
    meter = SimulatedMeter("1234")
    ctx = Ctx(meter, MeterState(), NOON)
    raw = bytearray(axdr.encode_datetime(NOON))
    raw[5] = axdr.NOT_SPECIFIED
    with pytest.raises(AccessError) as refused:
        clock.set(ctx, 2, axdr.Value(axdr.OCTET_STRING, bytes(raw)))
    assert refused.value.dar == DAR_TYPE_UNMATCHED


# -- date-time: round trips against the oracles ------------------------------------------


@settings(max_examples=200, deadline=None)
@given(INSTANTS, DEVIATIONS)
def test_datetime_round_trip_and_oracles(instant, deviation):
    raw = axdr.encode_datetime(instant, deviation=deviation)
    assert axdr.decode_datetime(raw) == instant
    theirs, _status = cosem_time.datetime_from_bytes(raw)
    if deviation == 0:  # dlms-cosem leaves a deviation of 0 naive (its `if offset_minutes:`)
        theirs = theirs.replace(tzinfo=UTC)
    assert theirs == instant
    assert _gurux(bytes((axdr.DATE_TIME,)) + raw).value == instant
    local = instant.astimezone(timezone(timedelta(minutes=-deviation)))
    assert axdr.decode_datetime(cosem_time.datetime_to_bytes(local)) == instant
    buf = GXByteBuffer()
    _GXCommon.setData(GXDLMSSettings(False, None), buf, DataType.DATETIME, GXDateTime(local))
    assert axdr.decode_datetime(bytes(buf.array())[1:]) == instant


# -- A-XDR: random trees against the oracles ----------------------------------------------

_SCALARS = [
    (st.integers(-(2**7), 2**7 - 1), axdr.enc_int8, D.IntegerData),
    (st.integers(0, 2**8 - 1), axdr.enc_uint8, D.UnsignedIntegerData),
    (st.integers(-(2**15), 2**15 - 1), axdr.enc_int16, D.LongData),
    (st.integers(0, 2**16 - 1), axdr.enc_uint16, D.UnsignedLongData),
    (st.integers(-(2**31), 2**31 - 1), axdr.enc_int32, D.DoubleLongData),
    (st.integers(0, 2**32 - 1), axdr.enc_uint32, D.DoubleLongUnsignedData),
    (st.integers(-(2**63), 2**63 - 1), axdr.enc_int64, D.Long64Data),
    (st.integers(0, 2**64 - 1), axdr.enc_uint64, D.UnsignedLong64Data),
    (st.integers(0, 255), axdr.enc_enum, D.EnumData),
    (st.binary(max_size=300), axdr.enc_octets, D.OctetStringData),
    (
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        axdr.enc_visible,
        D.VisibleStringData,
    ),
]


def _scalar(strategy, ours, theirs):
    return strategy.map(lambda v: (ours(v), v, theirs(v)))


def _composite(children):
    def build(items, as_array):
        encoded = [e for e, _, _ in items]
        values = [v for _, v, _ in items]
        objects = [o for _, _, o in items]
        if as_array:
            return axdr.enc_array(encoded), values, D.DataArray(objects)
        return axdr.enc_struct(*encoded), values, D.DataStructure(objects)

    return st.builds(build, st.lists(children, max_size=6), st.booleans())


TREES = st.recursive(st.one_of(*(_scalar(*s) for s in _SCALARS)), _composite, max_leaves=25)


def _plain(value):
    if isinstance(value, (bytearray, bytes)):
        return bytes(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(TREES)
def test_axdr_round_trip_and_oracles(tree):
    encoded, value, theirs = tree
    assert encoded == theirs.to_bytes()
    assert axdr.decode_all(encoded) == value
    parsed = D.DlmsDataParser().parse(encoded)
    assert len(parsed) == 1 and _plain(parsed[0].to_python()) == value
    assert _plain(_gurux(encoded)) == value


def _untyped(v: axdr.Value):
    return [_untyped(m) for m in v.value] if isinstance(v.value, list) else v.value


@settings(max_examples=200, deadline=None)
@given(TREES)
def test_typed_and_plain_decoders_agree(tree):
    encoded, value, _ = tree
    typed = axdr.decode_typed_all(encoded)
    assert typed.tag == encoded[0]
    assert _untyped(typed) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_typed_decoder_garbage_only_malformed(data):
    try:
        axdr.decode_typed_all(data)
    except MalformedResponse:
        pass
