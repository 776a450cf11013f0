"""Property tests: garbage never raises anything but SimProtocolError; round trips."""

from hypothesis import given, settings
from hypothesis import strategies as st

from collection.protocols.dlms import axdr
from collection.protocols.dlms import security as S
from collection.protocols.dlms.framing import (
    HdlcAddress,
    HdlcFrame,
    HdlcStream,
    WrapperStream,
    crc16,
    hdlc_parse,
)
from collection.simulators.dlms import apdu as A
from collection.simulators.dlms.errors import SimProtocolError
from collection.simulators.dlms.link import HdlcLink
from collection.simulators.dlms.meter import MeterState, SimulatedMeter
from collection.simulators.dlms.session import Session

from .conftest import NOW

GARBAGE = st.binary(max_size=300)
PREFIXED = st.one_of(
    GARBAGE,
    st.builds(
        lambda t, b: bytes([t]) + b,
        st.sampled_from([0x60, 0x62, 0xC0, 0xC1, 0xC3, 0xC8, 0xDB, 0x01]),
        GARBAGE,
    ),
)


def _only_protocol_errors(fn, data):
    try:
        fn(data)
    except SimProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(PREFIXED)
def test_apdu_parsers(data):
    for fn in (A.parse_aarq, A.parse_request, A.parse_rlrq, A.parse_initiate_request):
        _only_protocol_errors(fn, data)
    _only_protocol_errors(axdr.decode_typed_all, data)
    _only_protocol_errors(S.split_ciphered, data)
    _only_protocol_errors(lambda d: axdr.decode_datetime(d[:12]), data)


@settings(max_examples=300, deadline=None)
@given(PREFIXED, st.sampled_from([16, 17, 1, 5]))
def test_session_handles_garbage(data, client):
    session = Session(SimulatedMeter("1234"), MeterState(), lambda: NOW)
    _only_protocol_errors(lambda d: session.handle(client, d), data)


@settings(max_examples=300, deadline=None)
@given(st.lists(GARBAGE, max_size=4))
def test_frame_decoders(chunks):
    w, h = WrapperStream(), HdlcStream()
    link = HdlcLink(HdlcAddress(1, 17, 2))
    for c in chunks:
        _only_protocol_errors(w.feed, c)
        for item in h.feed(c):
            if not isinstance(item, SimProtocolError):
                _only_protocol_errors(link.handle, item)
        _only_protocol_errors(hdlc_parse, c)


@given(
    st.integers(1, 0x3FFF),
    st.integers(0, 0x3FFF),
    st.sampled_from([1, 2, 4]),
    st.integers(0, 127),
    st.integers(0, 255),
    st.binary(max_size=200),
    st.booleans(),
)
def test_hdlc_round_trip(upper, lower, size, client, control, info, seg):
    if size < 4:
        upper, lower = upper & 0x7F, lower & 0x7F
    dst = HdlcAddress(upper, None if size == 1 else lower, size)
    frame = HdlcFrame(dst, HdlcAddress(client, None, 1), control, info, seg)
    raw = frame.encode()
    (parsed,) = HdlcStream().feed(raw)
    assert parsed == frame


def test_crc_reference_vector():
    assert crc16(b"123456789") == 0x906E  # CRC-16/X.25 check value


@given(st.integers(0, 2**32 - 1), st.binary(max_size=100))
def test_axdr_round_trip(n, b):
    v = axdr.decode_typed_all(
        axdr.enc_struct(axdr.enc_uint32(n), axdr.enc_octets(b), axdr.enc_array([axdr.enc_int8(-1)]))
    )
    assert [m.value for m in v.as_list()[:2]] == [n, b]


@given(st.binary(max_size=100), st.integers(0, 2**32 - 1), st.sampled_from([0x10, 0x20, 0x30]))
def test_security_round_trip(plain, ic, sc):
    ek, ak, title = bytes(range(16)), bytes(range(16, 32)), b"SIM00001"
    content = S.protect(sc, title, ic, ek, ak, plain)
    assert S.unprotect(title, ek, ak, content) == (sc, ic, plain)
    if sc != 0x20 and len(content) > 5:
        broken = content[:-1] + bytes([content[-1] ^ 1])
        try:
            S.unprotect(title, ek, ak, broken)
            raise AssertionError("tampered content accepted")
        except SimProtocolError:
            pass
