"""Security suite 0 (AES-GCM-128, 12-byte tag) for the simulated meter.

* nonce = system title (8 octets) || invocation counter (4 octets, big endian)
* security control byte: 0x10 authentication only, 0x20 encryption only, 0x30 both
* additional authenticated data = SC || AK (|| plaintext for authentication only)
* HLS-GMAC: f(challenge) = SC(0x10) || IC || GMAC(SC || AK || challenge)
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ...protocols.dlms import axdr
from .apdu import GENERAL_GLO_CIPHERING
from .errors import ApduError, SecurityFailure

TAG_LEN = 12
SC_AUTH, SC_ENC, SC_AUTH_ENC = 0x10, 0x20, 0x30


def _gcm_encrypt(key: bytes, iv: bytes, aad: bytes, plain: bytes) -> tuple[bytes, bytes]:
    enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    ct = enc.update(plain) + enc.finalize()
    return ct, enc.tag[:TAG_LEN]


def _gcm_decrypt(key: bytes, iv: bytes, aad: bytes, ct: bytes, tag: bytes) -> bytes:
    try:
        dec = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=TAG_LEN)).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(ct) + dec.finalize()
    except (InvalidTag, ValueError):
        raise SecurityFailure("authentication tag mismatch") from None


def _ctr_only(key: bytes, iv: bytes, data: bytes) -> bytes:
    # GCM without tag == AES-CTR starting at counter block J0 + 1 (= iv || 0x00000002)
    ctr = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
    return ctr.update(data) + ctr.finalize()


def protect(sc: int, system_title: bytes, ic: int, ek: bytes, ak: bytes, plain: bytes) -> bytes:
    """Return ``SC || IC || payload`` (payload = ciphertext and/or tag per ``sc``)."""
    iv = system_title + ic.to_bytes(4, "big")
    head = bytes((sc,)) + ic.to_bytes(4, "big")
    kind = sc & 0x30
    if kind == SC_AUTH_ENC:
        ct, tag = _gcm_encrypt(ek, iv, bytes((sc,)) + ak, plain)
        return head + ct + tag
    if kind == SC_AUTH:
        _, tag = _gcm_encrypt(ek, iv, bytes((sc,)) + ak + plain, b"")
        return head + plain + tag
    if kind == SC_ENC:
        return head + _ctr_only(ek, iv, plain)
    raise SecurityFailure(f"unsupported security control {sc:#x}")


def unprotect(system_title: bytes, ek: bytes, ak: bytes, content: bytes) -> tuple[int, int, bytes]:
    """Verify and decrypt ``SC || IC || payload``; return ``(sc, ic, plaintext)``."""
    if len(content) < 5:
        raise ApduError("ciphered content too short")
    sc = content[0]
    ic = int.from_bytes(content[1:5], "big")
    if sc & 0x0F != 0:
        raise SecurityFailure(f"security suite {sc & 0x0F} not supported")
    iv = system_title + content[1:5]
    body = content[5:]
    kind = sc & 0x30
    if kind == SC_AUTH_ENC:
        if len(body) < TAG_LEN:
            raise SecurityFailure("ciphered content too short for tag")
        return sc, ic, _gcm_decrypt(ek, iv, bytes((sc,)) + ak, body[:-TAG_LEN], body[-TAG_LEN:])
    if kind == SC_AUTH:
        if len(body) < TAG_LEN:
            raise SecurityFailure("authenticated content too short for tag")
        plain = body[:-TAG_LEN]
        _gcm_decrypt(ek, iv, bytes((sc,)) + ak + plain, b"", body[-TAG_LEN:])
        return sc, ic, plain
    if kind == SC_ENC:
        return sc, ic, _ctr_only(ek, iv, body)
    raise SecurityFailure("unprotected content in a ciphered APDU")


def gmac(system_title: bytes, ic: int, ek: bytes, ak: bytes, challenge: bytes) -> bytes:
    iv = system_title + ic.to_bytes(4, "big")
    _, tag = _gcm_encrypt(ek, iv, bytes((SC_AUTH,)) + ak + challenge, b"")
    return tag


def hls_gmac_response(system_title: bytes, ic: int, ek: bytes, ak: bytes, challenge: bytes):
    """``SC || IC || GMAC`` proving knowledge of the keys over ``challenge``."""
    return bytes((SC_AUTH,)) + ic.to_bytes(4, "big") + gmac(system_title, ic, ek, ak, challenge)


def verify_hls_gmac(system_title: bytes, ek: bytes, ak: bytes, challenge: bytes, data: bytes):
    """Check an f(challenge) from the peer; return the invocation counter it used."""
    if len(data) != 5 + TAG_LEN or data[0] != SC_AUTH:
        raise SecurityFailure("malformed HLS-GMAC reply")
    ic = int.from_bytes(data[1:5], "big")
    expected = gmac(system_title, ic, ek, ak, challenge)
    if expected != data[5:]:
        raise SecurityFailure("HLS-GMAC reply does not verify")
    return ic


@dataclass
class Ciphered:
    """A received ciphered xDLMS APDU before decryption."""

    tag: int  # glo tag or GENERAL_GLO_CIPHERING
    system_title: bytes | None  # present with general-glo-ciphering
    content: bytes  # SC || IC || payload


def split_ciphered(apdu: bytes) -> Ciphered:
    """Parse glo-xxx (``tag len content``) or general-glo-ciphering framing."""
    if not apdu:
        raise ApduError("empty APDU")
    tag = apdu[0]
    pos = 1
    st = None
    if tag == GENERAL_GLO_CIPHERING:
        n, pos = axdr.read_length(apdu, pos)
        if pos + n > len(apdu):
            raise ApduError("truncated system title")
        st = bytes(apdu[pos : pos + n])
        pos += n
    n, pos = axdr.read_length(apdu, pos)
    if pos + n != len(apdu):
        raise ApduError("ciphered APDU length mismatch")
    return Ciphered(tag, st, bytes(apdu[pos:]))


def wrap_glo(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + axdr.encode_length(len(content)) + content


def wrap_general_glo(system_title: bytes, content: bytes) -> bytes:
    return (
        bytes((GENERAL_GLO_CIPHERING,))
        + axdr.encode_length(len(system_title))
        + system_title
        + axdr.encode_length(len(content))
        + content
    )
