"""Decoder key generation: DKGA02 (DES based) and DKGA04 (HMAC-SHA-256 based).

DKGA02 (IEC 62055-41), for 64-bit vending keys::

    PANBlock = rightmost 16 digits of IIN || IAIN, as 16 BCD nibbles
               (the meter number is replaced by zeros for key type 3, common keys)
    CB       = KT (1 digit) || SGC (6) || TI (2) || KRN (1) || "FFFFFF", as 16 nibbles
    X        = PANBlock XOR CB
    DK       = DES-encrypt(VK, X) XOR X XOR VK

DKGA04 (IEC 62055-41:2018), for 160-bit vending keys: HMAC-SHA-256 keyed with the
vending key over a counter-less SP 800-108 style message of length-prefixed ASCII
fields::

    04 | 02 "04" | 02 base date (YY) | 02 EA ("07"/"11") | 02 TI     <- label
    00                                                             <- separator
    04 | 06 SGC | 01 KT (hex) | 01 KRN (hex) | 12 MeterPAN (18)    <- context
    L as 32-bit big-endian (64 for EA07, 128 for EA11)

and the decoder key is the leading 64 or 128 bits of the MAC. Keys are returned in the
byte order the standard writes them (most significant byte first); the reference
tokens in the tests pin this.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, modes

try:  # cryptography >= 43 keeps (Triple)DES under "decrepit".
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

from .errors import InvalidKeyError, StsValueError
from .pan import MeterPan
from .tid import base_datetime

EA07 = "07"
EA11 = "11"
KEY_TYPES = {0: "DITK", 1: "DDTK", 2: "DUTK", 3: "DCTK"}
DKGA04_VENDING_KEY_BYTES = 20


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise StsValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


def check_key_params(sgc: int, ti: int, krn: int, key_type: int) -> None:
    """Validate supply group code, tariff index, key revision number and key type."""
    _check_int("supply group code", sgc, 0, 999_999)
    _check_int("tariff index", ti, 0, 99)
    _check_int("key revision number", krn, 1, 9)
    _check_int("key type", key_type, 0, 3)


def _single_des_encrypt(key: bytes, block: bytes) -> bytes:
    # Single DES is 3DES with K1 = K2 = K3 (EDE collapses to one encryption).
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def dkga02(
    vending_key: bytes, pan: MeterPan, *, sgc: int, ti: int, krn: int, key_type: int
) -> bytes:
    """Derive a 64-bit decoder key with DKGA02 from a 64-bit (DES) vending key."""
    if not isinstance(vending_key, (bytes, bytearray)) or len(vending_key) != 8:
        raise InvalidKeyError("DKGA02 needs a 64-bit (8-byte) vending key")
    check_key_params(sgc, ti, krn, key_type)
    drn = "0" * len(pan.drn) if key_type == 3 else pan.drn
    pan_block = bytes.fromhex((pan.iin + drn)[-16:])
    control_block = bytes.fromhex(f"{key_type}{sgc:06d}{ti:02d}{krn}FFFFFF")
    mixed = bytes(a ^ b for a, b in zip(pan_block, control_block, strict=True))
    encrypted = _single_des_encrypt(bytes(vending_key), mixed)
    return bytes(e ^ m ^ v for e, m, v in zip(encrypted, mixed, vending_key, strict=True))


def _field(value: str) -> bytes:
    return bytes([len(value)]) + value.encode("ascii")


def dkga04(
    vending_key: bytes,
    pan: MeterPan,
    *,
    sgc: int,
    ti: int,
    krn: int,
    key_type: int,
    base_date: int,
    ea: str,
) -> bytes:
    """Derive a decoder key with DKGA04: 64 bits for EA07, 128 bits for EA11."""
    if not isinstance(vending_key, (bytes, bytearray)) or len(vending_key) != 20:
        raise InvalidKeyError(
            f"DKGA04 needs a 160-bit ({DKGA04_VENDING_KEY_BYTES}-byte) vending key"
        )
    check_key_params(sgc, ti, krn, key_type)
    base_datetime(base_date)  # validates the base date
    if ea not in (EA07, EA11):
        raise StsValueError(f"encryption algorithm must be '07' or '11', got {ea!r}")
    key_bits = 64 if ea == EA07 else 128
    label = bytes([4]) + _field("04") + _field(f"{base_date % 100:02d}") + _field(ea)
    label += _field(f"{ti:02d}")
    context = bytes([4]) + _field(f"{sgc:06d}") + _field(f"{key_type:x}") + _field(f"{krn:x}")
    context += _field(pan.pan)
    message = label + b"\x00" + context + key_bits.to_bytes(4, "big")
    mac = hmac.new(bytes(vending_key), message, hashlib.sha256).digest()
    return mac[: key_bits // 8]
