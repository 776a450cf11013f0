import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collection.protocols.dlms import security as sec
from collection.protocols.errors import MalformedResponse, SecurityError

BK = bytes(range(16))
AK = bytes(range(16, 32))
CLIENT_TITLE = b"HEADEND1"
SERVER_TITLE = b"METER001"


def _server_reply(plain: bytes, ic: int, tag: int = 0xCC) -> bytes:
    payload = sec.protect(sec.SC_AUTH_ENC, SERVER_TITLE, ic, BK, AK, plain)
    return bytes((tag, len(payload))) + payload


def _cipherer():
    c = sec.Cipherer(BK, AK, CLIENT_TITLE)
    c.server_title = SERVER_TITLE
    return c


def test_matches_gurux_encryption():
    from gurux_dlms import AesGcmParameter, GXCiphering
    from gurux_dlms.enums import Security

    p = AesGcmParameter(0xC8, bytearray(CLIENT_TITLE), bytearray(BK), bytearray(AK))
    p.security = Security.AUTHENTICATION_ENCRYPTION
    p.invocationCounter = 42
    plain = bytes.fromhex("c001c100080000010000ff0200")
    theirs = bytes(GXCiphering.encrypt(p, bytearray(plain)))
    ours = _cipherer().wrap(plain, 42)
    assert ours == theirs


def test_roundtrip_and_replay():
    c = _cipherer()
    plain = bytes.fromhex("c401c1000906000102030405")
    assert c.unwrap(_server_reply(plain, 7)) == plain
    with pytest.raises(SecurityError):
        c.unwrap(_server_reply(plain, 7))  # replayed counter


def test_tampered_reply_rejected():
    c = _cipherer()
    reply = bytearray(_server_reply(bytes.fromhex("c401c100110a"), 9))
    reply[10] ^= 0x01
    with pytest.raises(SecurityError):
        c.unwrap(bytes(reply))


def test_wrong_key_rejected():
    c = sec.Cipherer(bytes(16), AK, CLIENT_TITLE)
    c.server_title = SERVER_TITLE
    with pytest.raises(SecurityError):
        c.unwrap(_server_reply(bytes.fromhex("c401c100110a"), 9))


def test_hls_gmac_roundtrip():
    value = sec.hls_reply(BK, AK, SERVER_TITLE, 5, b"challenge-bytes!")
    assert sec.verify_hls_reply(BK, AK, SERVER_TITLE, b"challenge-bytes!", value) == 5
    with pytest.raises(SecurityError):
        sec.verify_hls_reply(BK, AK, SERVER_TITLE, b"other-challenge!", value)


def test_hls_matches_gurux():
    from gurux_dlms import GXDLMSSettings
    from gurux_dlms.enums import Authentication
    from gurux_dlms.GXCiphering import GXCiphering
    from gurux_dlms.GXSecure import GXSecure

    s = GXDLMSSettings(False, None)
    s.authentication = Authentication.HIGH_GMAC
    cipher = GXCiphering(bytearray(CLIENT_TITLE))
    cipher.blockCipherKey = bytearray(BK)
    cipher.authenticationKey = bytearray(AK)
    s.cipher = cipher
    theirs = bytes(
        GXSecure.secure(s, cipher, 11, bytearray(b"0123456789abcdef"), bytearray(CLIENT_TITLE))
    )
    assert theirs == sec.hls_reply(BK, AK, CLIENT_TITLE, 11, b"0123456789abcdef")


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_unwrap_garbage(data):
    try:
        _cipherer().unwrap(data)
    except (SecurityError, MalformedResponse):
        pass


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=40), st.integers(0, 40))
def test_unwrap_bitflips_rejected(plain, position):
    reply = bytearray(_server_reply(b"\xc4" + plain, 100))
    position = 2 + position % (len(reply) - 2)
    reply[position] ^= 0x80
    with pytest.raises((SecurityError, MalformedResponse)):
        _cipherer().unwrap(bytes(reply))
