"""DLMS security suite 0 (AES-GCM-128) with tag verification, via ``cryptography``.

Ciphered APDU (glo-*): ``tag | len | SC | IC(4) | ciphertext | T(12)``;
IV = system title (8) || IC (4); AAD = SC || AK (|| plaintext for
authentication-only).  gurux's own GCM never checks the tag, so every
ciphered reply goes through :func:`unprotect` here.  Shared by the client, the simulated
meters and the push listener; :class:`Cipherer` is the client's per-association state.
"""

from __future__ import annotations

import hmac
import struct
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import MalformedResponse, SecurityError
from .apdu import GENERAL_GLO_CIPHERING
from .axdr import encode_length, read_length

SC_AUTH = 0x10
SC_ENC = 0x20
SC_AUTH_ENC = 0x30
SC_KIND_MASK = 0x30
SUITE_MASK = 0x0F  # security suite number in the low nibble: 0 only
TAG_LEN = 12
KEY_LEN = 16
SYSTEM_TITLE_LEN = 8
IC = struct.Struct(">I")  # invocation counter
SC_IC_LEN = 1 + IC.size
GCM_FIRST_COUNTER = b"\x00\x00\x00\x02"

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
# exception-response and confirmed-service-error may come in any glo- APDU
ERRORS_IN_ANY_GLO = (b"\xd8", b"\x0e")
CIPHERED_TAGS = frozenset(GLO_RESPONSE_TO_PLAIN) | {GENERAL_GLO_CIPHERING}


def _check_key(key: bytes, name: str) -> None:
    if len(key) != KEY_LEN:
        raise SecurityError(f"{name} must be 16 bytes (suite 0)")


def _gcm_tag(key: bytes, iv: bytes, aad: bytes, plain: bytes = b"") -> tuple[bytes, bytes]:
    enc = Cipher(algorithms.AES(bytes(key)), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    ct = enc.update(plain) + enc.finalize()
    return ct, enc.tag[:TAG_LEN]


def _ctr_only(key: bytes, iv: bytes, data: bytes) -> bytes:
    # GCM without its tag is AES-CTR from counter block J0 + 1 (iv || 0x00000002).
    ctr = Cipher(algorithms.AES(bytes(key)), modes.CTR(iv + GCM_FIRST_COUNTER)).encryptor()
    return ctr.update(data) + ctr.finalize()


def protect(sc: int, system_title: bytes, ic: int, ek: bytes, ak: bytes, plain: bytes) -> bytes:
    """Return ``SC || IC || payload``: ciphertext and/or tag as the security control says."""
    iv = bytes(system_title) + IC.pack(ic)
    head = bytes((sc,)) + IC.pack(ic)
    kind = sc & SC_KIND_MASK
    if kind == SC_AUTH_ENC:
        ct, tag = _gcm_tag(ek, iv, bytes((sc,)) + bytes(ak), plain)
        return head + ct + tag
    if kind == SC_AUTH:
        _, tag = _gcm_tag(ek, iv, bytes((sc,)) + bytes(ak) + plain)
        return head + plain + tag
    if kind == SC_ENC:
        return head + _ctr_only(ek, iv, plain)
    raise SecurityError(f"unsupported security control {sc:#x}")


def unprotect(
    system_title: bytes,
    ek: bytes,
    ak: bytes,
    content: bytes,
    *,
    require_authentication: bool = False,
) -> tuple[int, int, bytes]:
    """Verify and decrypt ``SC || IC || payload``; return ``(sc, ic, plaintext)``.

    The tag is always verified when the security control has one; the head-end refuses
    content without one (``require_authentication``), a meter may accept it.
    """
    if len(content) < SC_IC_LEN:
        raise SecurityError("ciphered payload too short")
    sc = content[0]
    if sc & SUITE_MASK != 0:
        raise SecurityError(f"unsupported security suite in SC 0x{sc:02x}")
    kind = sc & SC_KIND_MASK
    if require_authentication and not sc & SC_AUTH:
        raise SecurityError("unauthenticated reply refused")
    if len(system_title) != SYSTEM_TITLE_LEN:
        raise SecurityError("system title unknown or not 8 bytes")
    (ic,) = IC.unpack_from(content, 1)
    iv = bytes(system_title) + content[1:SC_IC_LEN]
    body = content[SC_IC_LEN:]
    if kind == SC_ENC:
        return sc, ic, _ctr_only(ek, iv, body)
    if kind not in (SC_AUTH, SC_AUTH_ENC):
        raise SecurityError("unprotected content in a ciphered APDU")
    if len(body) < TAG_LEN:
        raise SecurityError("ciphered payload too short for its tag")
    data, tag = body[:-TAG_LEN], body[-TAG_LEN:]
    try:
        dec = Cipher(
            algorithms.AES(bytes(ek)), modes.GCM(iv, tag, min_tag_length=TAG_LEN)
        ).decryptor()
        if kind == SC_AUTH_ENC:
            dec.authenticate_additional_data(bytes((sc,)) + bytes(ak))
            plain = dec.update(data) + dec.finalize()
        else:
            dec.authenticate_additional_data(bytes((sc,)) + bytes(ak) + data)
            dec.finalize()
            plain = data
    except (InvalidTag, ValueError):
        raise SecurityError("authentication tag mismatch (tampered or wrong keys)") from None
    return sc, ic, plain


def gmac(key: bytes, auth_key: bytes, system_title: bytes, sc: int, ic: int, data: bytes) -> bytes:
    """HLS-GMAC f(challenge): 12-byte tag over SC || AK || challenge."""
    iv = bytes(system_title) + IC.pack(ic)
    return _gcm_tag(key, iv, bytes((sc,)) + bytes(auth_key) + bytes(data))[1]


def hls_reply(key: bytes, auth_key: bytes, system_title: bytes, ic: int, challenge: bytes) -> bytes:
    """f(challenge) as sent in reply_to_HLS_authentication: SC || IC || GMAC."""
    return (
        bytes((SC_AUTH,)) + IC.pack(ic) + gmac(key, auth_key, system_title, SC_AUTH, ic, challenge)
    )


def verify_hls_reply(
    key: bytes, auth_key: bytes, system_title: bytes, challenge: bytes, value: bytes
) -> int:
    """Check the peer's f(challenge); return its invocation counter."""
    if len(value) != SC_IC_LEN + TAG_LEN or value[0] != SC_AUTH:
        raise SecurityError("invalid HLS-GMAC reply")
    (ic,) = IC.unpack_from(value, 1)
    expected = gmac(key, auth_key, system_title, SC_AUTH, ic, challenge)
    if not hmac.compare_digest(expected, value[SC_IC_LEN:]):
        raise SecurityError("HLS-GMAC reply does not verify")
    return ic


# -- glo-/general-glo-ciphering envelopes ---------------------------------------------------


class Ciphered(NamedTuple):
    """A received ciphered xDLMS APDU before decryption."""

    tag: int  # glo- tag or GENERAL_GLO_CIPHERING
    system_title: bytes | None  # present with general-glo-ciphering
    content: bytes  # SC || IC || payload


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    # The short form inline: this runs for every push and every ciphered reply.
    if pos < len(buf) and buf[pos] < 0x80:
        return buf[pos], pos + 1
    return read_length(buf, pos)


def split_ciphered(apdu: bytes) -> Ciphered:
    """Parse glo-xxx (``tag len content``) or general-glo-ciphering framing."""
    if not apdu:
        raise MalformedResponse("empty APDU")
    tag = apdu[0]
    pos = 1
    title = None
    if tag == GENERAL_GLO_CIPHERING:
        n, pos = _length(apdu, pos)
        if pos + n > len(apdu):
            raise MalformedResponse("truncated system title")
        title = bytes(apdu[pos : pos + n])
        pos += n
    n, pos = _length(apdu, pos)
    if pos + n != len(apdu):
        raise MalformedResponse("ciphered APDU length mismatch")
    return Ciphered(tag, title, bytes(apdu[pos:]))


def wrap_glo(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def wrap_general_glo(system_title: bytes, content: bytes) -> bytes:
    return (
        bytes((GENERAL_GLO_CIPHERING,))
        + encode_length(len(system_title))
        + system_title
        + encode_length(len(content))
        + content
    )


class Cipherer:
    """Per-association ciphering state of the client (keys, titles, server counter check)."""

    def __init__(self, block_key: bytes, auth_key: bytes, client_title: bytes) -> None:
        _check_key(bytes(block_key), "block key")
        _check_key(bytes(auth_key), "authentication key")
        if len(client_title) != SYSTEM_TITLE_LEN:
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
        payload = protect(
            SC_AUTH_ENC, self.client_title, ic, self.block_key, self.auth_key, plain_apdu
        )
        return wrap_glo(tag, payload)

    def unwrap(self, apdu: bytes) -> bytes:
        """Ciphered APDU -> plain APDU (tag checked, counter must increase)."""
        if apdu[:1] and apdu[0] not in CIPHERED_TAGS:
            raise MalformedResponse(f"APDU 0x{apdu[0]:02x} is not ciphered")
        ciphered = split_ciphered(apdu)
        title = self.server_title
        if ciphered.system_title is not None:
            title = ciphered.system_title
            if self.server_title and title != self.server_title:
                raise SecurityError("general-glo-ciphering from an unexpected system title")
        _sc, ic, plain = unprotect(
            title, self.block_key, self.auth_key, ciphered.content, require_authentication=True
        )
        if ic <= self.last_server_ic:
            raise SecurityError(f"replayed server invocation counter {ic}")
        self.last_server_ic = ic
        if (
            ciphered.tag != GENERAL_GLO_CIPHERING
            and plain[:1] != bytes((GLO_RESPONSE_TO_PLAIN[ciphered.tag],))
            and plain[:1] not in ERRORS_IN_ANY_GLO
        ):
            raise SecurityError("deciphered APDU does not match its glo- tag")
        return plain
