import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collection.protocols.dlms import apdu as ap
from collection.protocols.errors import (
    AccessDenied,
    InvocationCounterRejected,
    NotSupported,
    ProtocolError,
)


def test_get_normal():
    assert ap.parse_get_response(bytes.fromhex("c401c100 1100")) == (b"\x11\x00", 0xC1)


def test_get_block():
    block = ap.parse_get_response(bytes.fromhex("c402c1 00 00000001 00 03 010203"))
    assert block == ap.GetBlock(False, 1, b"\x01\x02\x03")


def test_get_errors():
    with pytest.raises(NotSupported):
        ap.parse_get_response(bytes.fromhex("c401c10104"))
    with pytest.raises(AccessDenied):
        ap.parse_get_response(bytes.fromhex("c401c10103"))


def test_exception_response_counter():
    with pytest.raises(InvocationCounterRejected) as info:
        ap.check_common(bytes.fromhex("d8 01 06 00000010"))
    assert info.value.expected == 16
    assert info.value.retryable


def test_action_and_set():
    assert ap.parse_action_response(bytes.fromhex("c701c100")) is None
    assert ap.parse_action_response(bytes.fromhex("c701c10001000903010203")) == b"\x01\x02\x03"
    assert ap.parse_set_response(bytes.fromhex("c501c100")) is None
    with pytest.raises(AccessDenied):
        ap.parse_set_response(bytes.fromhex("c501c103"))


def test_aare_rewrite():
    aare = bytes.fromhex(
        "612ba109060760857405080103a203020100a305a103020100a40a04084d45544552303031be0604040800065f"
    )
    info = ap.parse_aare(aare)
    assert info.result == 0 and info.server_title == b"METER001"
    assert info.user_info == bytes.fromhex("0800065f")
    new = ap.replace_aare_user_info(aare, info, b"\x08\x00\x06\x5f\x1f\x04")
    again = ap.parse_aare(new)
    assert again.user_info == b"\x08\x00\x06\x5f\x1f\x04"
    assert again.server_title == b"METER001"


ENTRY_POINTS = [
    ap.parse_get_response,
    ap.parse_set_response,
    ap.parse_action_response,
    ap.parse_aare,
    ap.check_common,
]


@settings(max_examples=300)
@given(st.binary(max_size=80), st.sampled_from(ENTRY_POINTS))
def test_garbage(data, fn):
    try:
        fn(data)
    except ProtocolError:
        pass


@settings(max_examples=300)
@given(
    st.sampled_from([0xC4, 0xC5, 0xC7, 0xD8, 0x0E, 0x61]),
    st.binary(max_size=60),
    st.sampled_from(ENTRY_POINTS),
)
def test_garbage_with_valid_tag(tag, rest, fn):
    try:
        fn(bytes((tag,)) + rest)
    except ProtocolError:
        pass


def test_list_results():
    raw = bytes.fromhex("03 00 1105 01 04 00 0202 0f00 1621")
    assert ap.parse_list_results(raw) == [b"\x11\x05", 4, bytes.fromhex("02020f001621")]
    kind = ap.parse_get_response(b"\xc4\x03\xc1" + raw)
    assert isinstance(kind[0], ap.ListBody)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_list_results_garbage(data):
    try:
        ap.parse_list_results(data)
    except ProtocolError:
        pass
