import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collection.protocols.dlms import framing as fr
from collection.protocols.errors import FrameError


def test_wrapper_roundtrip():
    frame = fr.wrapper_encode(16, 1, b"\x60\x01\x02")
    assert frame == bytes.fromhex("0001 0010 0001 0003 600102")
    assert fr.wrapper_parse(frame) == (16, 1, b"\x60\x01\x02")


def test_wrapper_bad_version():
    with pytest.raises(FrameError):
        fr.wrapper_parse_header(bytes.fromhex("0002001000010003"))


def test_crc_check_value():
    # CRC-16/X-25 check value.
    assert fr.crc16(b"123456789") == 0x906E


def test_hdlc_matches_gurux_snrm():
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType

    gx = GXDLMSClient(
        True,
        16,
        GXDLMSClient.getServerAddress(1, 17),
        Authentication.NONE,
        None,
        InterfaceType.HDLC,
    )
    gx.hdlcSettings.maxInfoTX = 128
    gx.hdlcSettings.maxInfoRX = 128
    theirs = bytes(gx.snrmRequest())
    parsed = fr.hdlc_parse(theirs)
    assert parsed.destination.encode() == fr.encode_server_address(1, 17)
    assert parsed.source.encode() == fr.encode_client_address(16)
    assert parsed.unnumbered == fr.SNRM
    ours = fr.hdlc_encode(parsed.destination.encode(), parsed.source.encode(), fr.SNRM, parsed.info)
    assert ours == theirs


def test_hdlc_i_frame_roundtrip_and_fcs():
    f = fr.hdlc_encode(
        b"\x03", b"\x21", fr.i_control(2, 5), b"\xe6\xe6\x00\xc0\x01", segmented=True
    )
    p = fr.hdlc_parse(f)
    assert p.is_information and p.send_seq == 2 and p.recv_seq == 5 and p.segmented
    assert p.info == b"\xe6\xe6\x00\xc0\x01"
    bad = bytearray(f)
    bad[-3] ^= 1
    with pytest.raises(FrameError):
        fr.hdlc_parse(bytes(bad))
    bad = bytearray(f)
    bad[5] ^= 0x10
    with pytest.raises(FrameError):
        fr.hdlc_parse(bytes(bad))


def test_server_address_forms():
    assert fr.encode_server_address(1) == b"\x03"
    assert fr.encode_server_address(1, 17) == b"\x02\x23"
    assert len(fr.encode_server_address(1, 1000)) == 4


def test_ua_negotiation():
    ua_info = bytes.fromhex("818014050200800602010007040000000108040000000 1".replace(" ", ""))
    params = fr.parse_ua_info(ua_info, fr.HdlcParameters(256, 256, 1, 1))
    # server transmits 128 (we receive), receives 256 (we may transmit)
    assert params.max_info_rx == 128 and params.max_info_tx == 256


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_hdlc_parse_garbage(data):
    try:
        fr.hdlc_parse(data)
    except FrameError:
        pass


@settings(max_examples=200)
@given(st.binary(max_size=60))
def test_ua_parse_garbage(data):
    try:
        fr.parse_ua_info(data, fr.HdlcParameters())
    except FrameError:
        pass


@settings(max_examples=200)
@given(st.binary(max_size=40))
def test_wrapper_parse_garbage(data):
    try:
        fr.wrapper_parse(data)
    except FrameError:
        pass


@given(st.binary(min_size=0, max_size=200), st.integers(0, 7), st.integers(0, 7), st.booleans())
def test_hdlc_roundtrip_property(info, ns, nr, seg):
    f = fr.hdlc_encode(b"\x02\x23", b"\x21", fr.i_control(ns, nr), info, seg)
    p = fr.hdlc_parse(f)
    assert p.info == info
    if info:
        assert (p.send_seq, p.recv_seq, p.segmented) == (ns, nr, seg)


def test_fcs_ending_in_flag_byte():
    """No byte stuffing in DLMS HDLC: an FCS ending in 0x7E must not be taken for a flag."""
    infos = (i.to_bytes(2, "big") + b"\xe6\xe7\x00" for i in range(5000))
    frames = (
        (info, fr.hdlc_encode(b"\x21", b"\x02\x23", fr.i_control(0, 0), info)) for info in infos
    )
    info, f = next(((info, f) for info, f in frames if f[-2] == 0x7E), (None, None))
    assert f is not None, "none of 5000 frames has an FCS ending in 0x7E"
    assert fr.hdlc_parse(f).info == info  # with flags
    assert fr.hdlc_parse(f[1:-1]).info == info  # body only


@given(st.binary(max_size=300))
def test_crc_matches_bitwise_reference(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    assert fr.crc16(data) == crc ^ 0xFFFF
