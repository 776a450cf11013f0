"""DLMS security suite 0 (AES-GCM-128) with tag verification, via ``cryptography``.

Ciphered APDU (glo-*): ``tag | len | SC | IC(4) | ciphertext | T(12)``;
IV = system title (8) || IC (4); AAD = SC || AK (|| plaintext for
authentication-only).  gurux's own GCM never checks the tag, so every
ciphered reply goes through :func:`decrypt_apdu` here.
"""

from __future__ import annotations

import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import MalformedResponse, SecurityError
from .axdr import encode_length, read_length

SC_AUTH = 0x10
SC_ENC = 0x20
SC_AUTH_ENC = 0x30
TAG_LEN = 12

# glo-* request/response tags (plain -> ciphered)
GLO_REQUEST = {0xC0: 0xC8, 0xC1: 0xC9, 0xC3: 0xCB, 0x01: 0x21, 0x62: None}
GLO_RESPONSE_TO_PLAIN = {
    0xCC: 0xC4,  # get-response
    0xCD: 0xC5,  # set-response
    0xCF: 0xC7,  # action-response
    0x28: 0x08,  # initiate-response
    0x2E: 0x0E,  # confirmed-service-error
    0xCA: 0xC2,  # event-notification
}
GENERAL_GLO_CIPHERING = 0xDB
CIPHERED_TAGS = frozenset(GLO_RESPONSE_TO_PLAIN) | {GENERAL_GLO_CIPHERING}


def _check_key(key: bytes, name: str) -> None:
    if len(key) != 16:
        raise SecurityError(f"{name} must be 16 bytes (suite 0)")


def gcm_encrypt(
    key: bytes, auth_key: bytes, system_title: bytes, sc: int, ic: int, plain: bytes
) -> bytes:
    """Return ``SC | IC | ciphertext | tag12`` (no outer tag/length)."""
    iv = bytes(system_title) + struct.pack(">I", ic)
    header = bytes((sc,)) + struct.pack(">I", ic)
    enc = Cipher(algorithms.AES(bytes(key)), modes.GCM(iv)).encryptor()
    if sc & SC_ENC:
        enc.authenticate_additional_data(bytes((sc,)) + bytes(auth_key))
        ct = enc.update(plain) + enc.finalize()
    else:
        enc.authenticate_additional_data(bytes((sc,)) + bytes(auth_key) + plain)
        enc.finalize()
        ct = plain
    return header + ct + enc.tag[:TAG_LEN]


def gcm_decrypt(
    key: bytes, auth_key: bytes, system_title: bytes, payload: bytes
) -> tuple[int, int, bytes]:
    """``SC | IC | ciphertext | tag`` -> (SC, IC, plaintext). Verifies the tag."""
    if len(payload) < 5 + TAG_LEN:
        raise SecurityError("ciphered payload too short")
    sc = payload[0]
    if sc & 0x0F != 0:
        raise SecurityError(f"unsupported security suite in SC 0x{sc:02x}")
    if not sc & SC_AUTH:
        raise SecurityError("unauthenticated reply refused")
    (ic,) = struct.unpack_from(">I", payload, 1)
    if len(system_title) != 8:
        raise SecurityError("server system title unknown or not 8 bytes")
    iv = bytes(system_title) + payload[1:5]
    body = payload[5:-TAG_LEN]
    tag = payload[-TAG_LEN:]
    try:
        dec = Cipher(
            algorithms.AES(bytes(key)), modes.GCM(iv, tag, min_tag_length=TAG_LEN)
        ).decryptor()
        if sc & SC_ENC:
            dec.authenticate_additional_data(bytes((sc,)) + bytes(auth_key))
            plain = dec.update(body) + dec.finalize()
        else:
            dec.authenticate_additional_data(bytes((sc,)) + bytes(auth_key) + body)
            dec.finalize()
            plain = body
    except InvalidTag:
        raise SecurityError("authentication tag mismatch (tampered or wrong keys)") from None
    return sc, ic, plain


def gmac(key: bytes, auth_key: bytes, system_title: bytes, sc: int, ic: int, data: bytes) -> bytes:
    """HLS-GMAC f(challenge): 12-byte tag over SC || AK || challenge."""
    iv = bytes(system_title) + struct.pack(">I", ic)
    enc = Cipher(algorithms.AES(bytes(key)), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(bytes((sc,)) + bytes(auth_key) + bytes(data))
    enc.finalize()
    return enc.tag[:TAG_LEN]


def hls_reply(key: bytes, auth_key: bytes, system_title: bytes, ic: int, challenge: bytes) -> bytes:
    """f(challenge) as sent in reply_to_HLS_authentication: SC || IC || GMAC."""
    return (
        bytes((SC_AUTH,))
        + struct.pack(">I", ic)
        + gmac(key, auth_key, system_title, SC_AUTH, ic, challenge)
    )


def verify_hls_reply(
    key: bytes, auth_key: bytes, system_title: bytes, challenge: bytes, value: bytes
) -> int:
    """Check the server's f(CtoS); return its invocation counter."""
    if len(value) != 5 + TAG_LEN or value[0] != SC_AUTH:
        raise SecurityError("invalid HLS-GMAC reply from meter")
    (ic,) = struct.unpack_from(">I", value, 1)
    expected = gmac(key, auth_key, system_title, SC_AUTH, ic, challenge)
    if not hmac.compare_digest(expected, value[5:]):
        raise SecurityError("meter failed HLS-GMAC authentication")
    return ic


class Cipherer:
    """Per-association ciphering state (keys, titles, server counter check)."""

    def __init__(self, block_key: bytes, auth_key: bytes, client_title: bytes) -> None:
        _check_key(bytes(block_key), "block key")
        _check_key(bytes(auth_key), "authentication key")
        if len(client_title) != 8:
            raise SecurityError("client system title must be 8 bytes")
        self.block_key = bytes(block_key)
        self.auth_key = bytes(auth_key)
        self.client_title = bytes(client_title)
        self.server_title: bytes = b""
        self.last_server_ic: int = -1

    def wrap(self, plain_apdu: bytes, ic: int) -> bytes:
        tag = GLO_REQUEST.get(plain_apdu[0])
        if tag is None:
            raise ValueError(f"no glo- tag for APDU 0x{plain_apdu[0]:02x}")
        payload = gcm_encrypt(
            self.block_key, self.auth_key, self.client_title, SC_AUTH_ENC, ic, plain_apdu
        )
        return bytes((tag,)) + encode_length(len(payload)) + payload

    def unwrap(self, apdu: bytes) -> bytes:
        """Ciphered APDU -> plain APDU (tag checked, counter must increase)."""
        if not apdu:
            raise MalformedResponse("empty APDU")
        tag = apdu[0]
        pos = 1
        title = self.server_title
        if tag == GENERAL_GLO_CIPHERING:
            n, pos = read_length(apdu, pos)
            title = bytes(apdu[pos : pos + n])
            pos += n
            if self.server_title and title != self.server_title:
                raise SecurityError("general-glo-ciphering from an unexpected system title")
        elif tag not in GLO_RESPONSE_TO_PLAIN:
            raise MalformedResponse(f"APDU 0x{tag:02x} is not ciphered")
        n, pos = read_length(apdu, pos)
        payload = bytes(apdu[pos : pos + n])
        if len(payload) != n or pos + n != len(apdu):
            raise MalformedResponse("ciphered APDU length mismatch")
        _sc, ic, plain = gcm_decrypt(self.block_key, self.auth_key, title, payload)
        if ic <= self.last_server_ic:
            raise SecurityError(f"replayed server invocation counter {ic}")
        self.last_server_ic = ic
        if (
            tag != GENERAL_GLO_CIPHERING
            and plain[:1] != bytes((GLO_RESPONSE_TO_PLAIN[tag],))
            and plain[:1] not in (b"\xd8", b"\x0e")  # errors may come in any glo- APDU
        ):
            raise SecurityError("deciphered APDU does not match its glo- tag")
        return plain
