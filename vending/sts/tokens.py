"""STS tokens (IEC 62055-41): build and parse the 66-bit token and its 20 decimal digits.

Every token carries 66 bits: a 2-bit token class and a 64-bit data block. The data
block of classes 0 and 2 is encrypted with the meter's decoder key (EA07 or EA11);
class 1 (meter test/display) tokens are sent in the clear. Bit layouts of the data
block, most significant bit first (bit 63 .. bit 0)::

    class 0, class 2 "register" tokens:
        subclass(4) RND(4) TID(24) amount/value(16) CRC(16)
    class 1, subclass 0:  subclass(4) control(36) manufacturer code(8)  CRC(16)
    class 1, subclass 1:  subclass(4) control(28) manufacturer code(16) CRC(16)
    class 2/3, 1st key section: subclass(4) KENHO(4) KRN(4) RO(1) res(1) KT(2) NKHO(32) CRC
    class 2/4, 2nd key section: subclass(4) KENLO(4) TI(8) NKLO(32) CRC(16)
    class 2/8, 3rd key section: subclass(4) SGC low 12 bits(12) new key bits 64..95(32) CRC
    class 2/9, 4th key section: subclass(4) SGC high 12 bits(12) new key bits 32..63(32) CRC

The CRC is the reflected CRC-16 (x^16 + x^15 + x^2 + 1, initial value 0xFFFF) over the
class and the 48 data bits above it, taken as a 56-bit big-endian number, and is stored
with its two bytes swapped (low byte in the high position).

After encryption the class bits are placed above the block (bits 65, 64) and then
transposed with bits 28 and 27: the token carries block bits 28/27 in positions 65/64 and
the class in positions 28/27. The 66-bit number is written as 20 decimal digits.

Where public implementations disagree (S-box/permutation tables of EA07, byte order of
decoder keys, key-section split of 128-bit keys) this module follows IEC 62055-41 as
pinned by the STS conformance test vectors reproduced in ``tests/vending/sts``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from . import misty1, sta
from .amount import (
    amount_from_tenths,
    decode_units,
    encode_units,
    tenths_from_amount,
    to_decimal,
)
from .crc import crc16_bytes
from .dkga import EA07, EA11
from .errors import (
    AmountRangeError,
    CrcError,
    InvalidKeyError,
    StsValueError,
    TokenFormatError,
    UnsupportedTokenError,
)
from .tid import TID_MAX, datetime_from_tid, tid_from_datetime

TOKEN_BITS = 66
TOKEN_MAX = (1 << TOKEN_BITS) - 1
_M64 = (1 << 64) - 1

CLASS_TRANSFER = 0
CLASS_INITIATE = 1
CLASS_MANAGEMENT = 2


class TokenKind(StrEnum):
    """Token class/subclass combinations this engine understands."""

    CREDIT_ELECTRICITY = "credit-electricity"
    CREDIT_WATER = "credit-water"
    CREDIT_GAS = "credit-gas"
    CREDIT_TIME = "credit-time"
    CREDIT_CURRENCY = "credit-currency"
    METER_TEST = "meter-test"
    METER_TEST_4DIGIT_MFR = "meter-test-4digit-mfr"
    MAX_POWER = "max-power"
    CLEAR_CREDIT = "clear-credit"
    SET_TARIFF_RATE = "set-tariff-rate"
    KEY_CHANGE_1 = "key-change-1"
    KEY_CHANGE_2 = "key-change-2"
    CLEAR_TAMPER = "clear-tamper"
    PHASE_UNBALANCE = "phase-unbalance"
    WATER_METER_FACTOR = "water-meter-factor"
    KEY_CHANGE_3 = "key-change-3"
    KEY_CHANGE_4 = "key-change-4"

    @property
    def token_class(self) -> int:
        return _CODES[self][0]

    @property
    def subclass(self) -> int:
        return _CODES[self][1]


_CODES: dict[TokenKind, tuple[int, int]] = {
    TokenKind.CREDIT_ELECTRICITY: (0, 0),
    TokenKind.CREDIT_WATER: (0, 1),
    TokenKind.CREDIT_GAS: (0, 2),
    TokenKind.CREDIT_TIME: (0, 3),
    TokenKind.CREDIT_CURRENCY: (0, 4),
    TokenKind.METER_TEST: (1, 0),
    TokenKind.METER_TEST_4DIGIT_MFR: (1, 1),
    TokenKind.MAX_POWER: (2, 0),
    TokenKind.CLEAR_CREDIT: (2, 1),
    TokenKind.SET_TARIFF_RATE: (2, 2),
    TokenKind.KEY_CHANGE_1: (2, 3),
    TokenKind.KEY_CHANGE_2: (2, 4),
    TokenKind.CLEAR_TAMPER: (2, 5),
    TokenKind.PHASE_UNBALANCE: (2, 6),
    TokenKind.WATER_METER_FACTOR: (2, 7),
    TokenKind.KEY_CHANGE_3: (2, 8),
    TokenKind.KEY_CHANGE_4: (2, 9),
}
_KINDS = {code: kind for kind, code in _CODES.items()}
CREDIT_KINDS = frozenset(k for k in TokenKind if k.token_class == CLASS_TRANSFER)
# Class 2 tokens with the class-0 style layout: RND, TID and one 16-bit field.
REGISTER_KINDS = frozenset(
    {
        TokenKind.MAX_POWER,
        TokenKind.CLEAR_CREDIT,
        TokenKind.SET_TARIFF_RATE,
        TokenKind.CLEAR_TAMPER,
        TokenKind.PHASE_UNBALANCE,
        TokenKind.WATER_METER_FACTOR,
    }
)
KEY_CHANGE_KINDS = (
    TokenKind.KEY_CHANGE_1,
    TokenKind.KEY_CHANGE_2,
    TokenKind.KEY_CHANGE_3,
    TokenKind.KEY_CHANGE_4,
)
REGISTER_ALL = 0xFFFF  # clear-credit register mask meaning "all registers"


@dataclass(frozen=True)
class DecoderKey:
    """A decoder key bound to its encryption algorithm (EA07: 8 bytes, EA11: 16 bytes)."""

    key: bytes
    ea: str = EA07

    def __post_init__(self) -> None:
        if self.ea not in (EA07, EA11):
            raise StsValueError(f"encryption algorithm must be '07' or '11', got {self.ea!r}")
        if not isinstance(self.key, (bytes, bytearray)):
            raise InvalidKeyError("decoder key must be bytes")
        want = 8 if self.ea == EA07 else 16
        if len(self.key) != want:
            raise InvalidKeyError(
                f"EA{self.ea} needs a {want * 8}-bit decoder key, got {len(self.key) * 8} bits"
            )
        object.__setattr__(self, "key", bytes(self.key))

    @classmethod
    def from_hex(cls, text: str, ea: str = EA07) -> DecoderKey:
        return cls(parse_hex_key(text, "decoder key"), ea)

    @property
    def hex(self) -> str:
        return self.key.hex()

    def encrypt(self, block: int) -> int:
        if self.ea == EA07:
            return sta.encrypt_block(self.key, block)
        return misty1.encrypt_block(self.key, block)

    def decrypt(self, block: int) -> int:
        if self.ea == EA07:
            return sta.decrypt_block(self.key, block)
        return misty1.decrypt_block(self.key, block)


def parse_hex_key(text: str, what: str = "key") -> bytes:
    """Parse a hexadecimal key (spaces allowed) with a clear error."""
    if not isinstance(text, str):
        raise InvalidKeyError(f"{what} must be a hex string")
    cleaned = text.replace(" ", "").replace(":", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        if not cleaned or len(cleaned) % 2:
            raise ValueError
        return bytes.fromhex(cleaned)
    except ValueError:
        raise InvalidKeyError(
            f"{what} must be an even number of hex digits, got {text!r}"
        ) from None


@dataclass(frozen=True)
class StsToken:
    """A token (built or decoded) with its fields; unused fields are ``None``."""

    digits: str
    kind: TokenKind
    token_class: int
    subclass: int
    data_block: int
    crc: int
    rnd: int | None = None
    tid: int | None = None
    issued_at: datetime | None = None
    amount_field: int | None = None
    amount: Decimal | None = None  # class 0: units (kWh, ...) actually credited
    watts: int | None = None  # max power / phase unbalance limit actually set
    register: int | None = None
    rate: int | None = None
    value: int | None = None  # water meter factor / clear-tamper pad
    control: int | None = None
    manufacturer_code: int | None = None
    ken_part: int | None = None  # KENHO (section 1) or KENLO (section 2)
    krn: int | None = None
    rollover: bool | None = None
    key_type: int | None = None
    tariff_index: int | None = None
    key_part: int | None = None  # 32 bits of the new decoder key
    sgc_part: int | None = None  # 12 bits of the new supply group code

    @property
    def grouped(self) -> str:
        """The 20 digits in five groups of four, as printed on receipts."""
        return " ".join(self.digits[i : i + 4] for i in range(0, 20, 4))

    @property
    def number(self) -> int:
        return int(self.digits)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly field dictionary (``None`` fields left out)."""
        out: dict[str, object] = {"token": self.digits, "grouped": self.grouped}
        for name, val in asdict(self).items():
            if val is None or name in ("digits", "data_block"):
                continue
            if isinstance(val, TokenKind):
                val = val.value
            elif isinstance(val, Decimal):
                val = str(val)
            elif isinstance(val, datetime):
                val = val.isoformat()
            out[name] = val
        out["data_block"] = f"{self.data_block:016x}"
        return out


# --- 66-bit token assembly -------------------------------------------------------------


def _crc(token_class: int, body48: int) -> int:
    register = crc16_bytes((token_class << 48 | body48).to_bytes(7, "big"))
    return (register & 0xFF) << 8 | register >> 8


def transpose_class(token_class: int, block: int) -> int:
    """Insert the class bits above a 64-bit block and swap them with bits 28 and 27."""
    moved = (block >> 28 & 1) << 65 | (block >> 27 & 1) << 64
    low = block & ~(0b11 << 27) & _M64
    return moved | low | (token_class & 0b11) << 27


def untranspose_class(number: int) -> tuple[int, int]:
    """Inverse of :func:`transpose_class`: return ``(token_class, block)``."""
    token_class = number >> 27 & 0b11
    block = number & _M64 & ~(0b11 << 27)
    block |= (number >> 65 & 1) << 28 | (number >> 64 & 1) << 27
    return token_class, block


def _assemble(token_class: int, body48: int, key: DecoderKey | None) -> tuple[str, int, int]:
    crc = _crc(token_class, body48)
    block = body48 << 16 | crc
    cipher = block if token_class == CLASS_INITIATE else _require_key(key).encrypt(block)
    return f"{transpose_class(token_class, cipher):020d}", block, crc


def _require_key(key: DecoderKey | None) -> DecoderKey:
    if not isinstance(key, DecoderKey):
        raise InvalidKeyError("this token class needs a decoder key (DecoderKey)")
    return key


def _check_field(name: str, value: int, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise StsValueError(f"{name} must be an integer in 0..{(1 << bits) - 1}, got {value!r}")
    return value


def _rnd(rnd: int | None) -> int:
    # A fresh random nibble per token unless the caller pins it (tests, re-issues).
    return secrets.randbelow(16) if rnd is None else _check_field("RND", rnd, 4)


def _tid(issued_at: datetime | int, base_date: int | None) -> tuple[int, datetime | None]:
    if isinstance(issued_at, datetime):
        if base_date is None:
            raise StsValueError("base_date is needed to compute the TID from a datetime")
        tid = tid_from_datetime(issued_at, base_date)
        return tid, datetime_from_tid(tid, base_date)
    tid = _check_field("TID", issued_at, 24)
    when = datetime_from_tid(tid, base_date) if base_date is not None else None
    return tid, when


def _register_token(
    key: DecoderKey,
    kind: TokenKind,
    field16: int,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None,
    **extra: object,
) -> StsToken:
    rnd_value = _rnd(rnd)
    tid, when = _tid(issued_at, base_date)
    body = kind.subclass << 44 | rnd_value << 40 | tid << 16 | field16
    digits, block, crc = _assemble(kind.token_class, body, key)
    return StsToken(
        digits=digits,
        kind=kind,
        token_class=kind.token_class,
        subclass=kind.subclass,
        data_block=block,
        crc=crc,
        rnd=rnd_value,
        tid=tid,
        issued_at=when,
        amount_field=field16,
        **extra,  # type: ignore[arg-type]
    )


# --- public encoders -------------------------------------------------------------------


def encode_credit(
    key: DecoderKey,
    kind: TokenKind | str,
    amount: Decimal | int | str | float,
    *,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None = None,
) -> StsToken:
    """Class 0 credit transfer token for ``amount`` units (kWh, m3, ...; 0.1 resolution).

    The amount is rounded up to the next value a token can carry; ``token.amount`` is
    what the meter will credit. ``issued_at`` is an aware datetime (or a raw TID).
    """
    kind = TokenKind(kind)
    if kind not in CREDIT_KINDS:
        raise UnsupportedTokenError(f"{kind.value} is not a credit transfer token")
    tenths = tenths_from_amount(amount)
    if tenths == 0:
        raise AmountRangeError("credit amount must be greater than zero")
    field16 = encode_units(tenths)
    credited = amount_from_tenths(decode_units(field16))
    return _register_token(key, kind, field16, issued_at, base_date, rnd, amount=credited)


def _watts(value: int | str | Decimal) -> int:
    dec = to_decimal(value)
    if dec != dec.to_integral_value():
        raise AmountRangeError(f"power limit must be a whole number of watts, got {value}")
    watts = int(dec)
    return encode_units(watts)


def encode_max_power(
    key: DecoderKey,
    watts: int,
    *,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None = None,
) -> StsToken:
    """Class 2 "set maximum power limit" token (watts, rounded up to a representable value)."""
    field16 = _watts(watts)
    return _register_token(
        key, TokenKind.MAX_POWER, field16, issued_at, base_date, rnd, watts=decode_units(field16)
    )


def encode_phase_unbalance(
    key: DecoderKey,
    watts: int,
    *,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None = None,
) -> StsToken:
    """Class 2 "set maximum phase power unbalance limit" token (watts)."""
    field16 = _watts(watts)
    return _register_token(
        key,
        TokenKind.PHASE_UNBALANCE,
        field16,
        issued_at,
        base_date,
        rnd,
        watts=decode_units(field16),
    )


def encode_clear_credit(
    key: DecoderKey,
    register: int = REGISTER_ALL,
    *,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None = None,
) -> StsToken:
    """Class 2 "clear credit" token; ``register`` 0 = electricity, ..., 0xFFFF = all."""
    _check_field("register", register, 16)
    return _register_token(
        key, TokenKind.CLEAR_CREDIT, register, issued_at, base_date, rnd, register=register
    )


def encode_set_tariff_rate(
    key: DecoderKey,
    rate: int,
    *,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None = None,
) -> StsToken:
    """Class 2 "set tariff rate" token carrying the raw 16-bit rate value."""
    _check_field("rate", rate, 16)
    return _register_token(
        key, TokenKind.SET_TARIFF_RATE, rate, issued_at, base_date, rnd, rate=rate
    )


def encode_clear_tamper(
    key: DecoderKey,
    *,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None = None,
) -> StsToken:
    """Class 2 "clear tamper condition" token (its 16-bit pad field is zero)."""
    return _register_token(key, TokenKind.CLEAR_TAMPER, 0, issued_at, base_date, rnd, value=0)


def encode_water_meter_factor(
    key: DecoderKey,
    factor: int,
    *,
    issued_at: datetime | int,
    base_date: int | None,
    rnd: int | None = None,
) -> StsToken:
    """Class 2 "set water meter factor" token carrying the raw 16-bit factor."""
    _check_field("water meter factor", factor, 16)
    return _register_token(
        key, TokenKind.WATER_METER_FACTOR, factor, issued_at, base_date, rnd, value=factor
    )


def encode_meter_test(
    control: int, manufacturer_code: int = 0, *, four_digit_manufacturer: bool = False
) -> StsToken:
    """Class 1 "initiate meter test/display" token (not encrypted, no key needed).

    Subclass 0 carries a 36-bit control field and a 2-digit (8-bit) manufacturer code;
    subclass 1 a 28-bit control field and a 4-digit (16-bit) manufacturer code.
    """
    if four_digit_manufacturer:
        kind, control_bits, mfr_bits = TokenKind.METER_TEST_4DIGIT_MFR, 28, 16
    else:
        kind, control_bits, mfr_bits = TokenKind.METER_TEST, 36, 8
    _check_field("control", control, control_bits)
    _check_field("manufacturer code", manufacturer_code, mfr_bits)
    body = kind.subclass << 44 | control << mfr_bits | manufacturer_code
    digits, block, crc = _assemble(CLASS_INITIATE, body, None)
    return StsToken(
        digits=digits,
        kind=kind,
        token_class=CLASS_INITIATE,
        subclass=kind.subclass,
        data_block=block,
        crc=crc,
        control=control,
        manufacturer_code=manufacturer_code,
    )


def _key_section(key: DecoderKey, kind: TokenKind, payload44: int, **fields: object) -> StsToken:
    body = kind.subclass << 44 | payload44
    digits, block, crc = _assemble(CLASS_MANAGEMENT, body, key)
    return StsToken(
        digits=digits,
        kind=kind,
        token_class=CLASS_MANAGEMENT,
        subclass=kind.subclass,
        data_block=block,
        crc=crc,
        **fields,  # type: ignore[arg-type]
    )


def encode_key_change(
    current_key: DecoderKey,
    new_key: bytes | DecoderKey,
    *,
    new_krn: int,
    new_ti: int,
    new_key_type: int,
    ken: int = 255,
    rollover: bool = False,
    new_sgc: int | None = None,
) -> tuple[StsToken, ...]:
    """Key change tokens, encrypted with the *current* decoder key.

    A 64-bit new key gives two tokens (1st and 2nd section); a 128-bit key (EA11) gives
    four, and the 3rd/4th sections also carry the new supply group code. ``rollover``
    sets the RO bit, telling the meter to clear its TID history (needed whenever the new
    key uses a later base date). ``ken`` is the 8-bit key expiry number (255: none).
    """
    new_bytes = new_key.key if isinstance(new_key, DecoderKey) else new_key
    if not isinstance(new_bytes, (bytes, bytearray)) or len(new_bytes) not in (8, 16):
        raise InvalidKeyError("new decoder key must be 64 or 128 bits")
    want = 8 if current_key.ea == EA07 else 16
    if len(new_bytes) != want:
        raise UnsupportedTokenError(
            f"a key change under EA{current_key.ea} must carry a {want * 8}-bit new key"
        )
    _check_field("new key revision number", new_krn, 4)
    _check_field("new tariff index", new_ti, 8)
    if new_ti > 99:
        raise StsValueError(f"new tariff index must be 0..99, got {new_ti}")
    _check_field("new key type", new_key_type, 2)
    _check_field("key expiry number", ken, 8)
    if not isinstance(rollover, bool):
        raise StsValueError("rollover must be a bool")
    nk = int.from_bytes(new_bytes, "big")
    if len(new_bytes) == 8:
        high, low = nk >> 32, nk & 0xFFFFFFFF
    else:
        high, low = nk >> 96, nk & 0xFFFFFFFF
    ken_high, ken_low = ken >> 4, ken & 0xF
    first = _key_section(
        current_key,
        TokenKind.KEY_CHANGE_1,
        ken_high << 40 | new_krn << 36 | int(rollover) << 35 | new_key_type << 32 | high,
        ken_part=ken_high,
        krn=new_krn,
        rollover=rollover,
        key_type=new_key_type,
        key_part=high,
    )
    second = _key_section(
        current_key,
        TokenKind.KEY_CHANGE_2,
        ken_low << 40 | new_ti << 32 | low,
        ken_part=ken_low,
        tariff_index=new_ti,
        key_part=low,
    )
    if len(new_bytes) == 8:
        return first, second
    if new_sgc is None:
        raise StsValueError("a 128-bit key change needs the new supply group code (new_sgc)")
    _check_field("new supply group code", new_sgc, 24)
    if new_sgc > 999_999:
        raise StsValueError(f"new supply group code must be 0..999999, got {new_sgc}")
    middle_high = nk >> 64 & 0xFFFFFFFF  # key bytes 4..7
    middle_low = nk >> 32 & 0xFFFFFFFF  # key bytes 8..11
    sgc_low, sgc_high = new_sgc & 0xFFF, new_sgc >> 12
    third = _key_section(
        current_key,
        TokenKind.KEY_CHANGE_3,
        sgc_low << 32 | middle_high,
        sgc_part=sgc_low,
        key_part=middle_high,
    )
    fourth = _key_section(
        current_key,
        TokenKind.KEY_CHANGE_4,
        sgc_high << 32 | middle_low,
        sgc_part=sgc_high,
        key_part=middle_low,
    )
    return first, second, third, fourth


# --- decoding --------------------------------------------------------------------------


def parse_token_number(text: str | int) -> int:
    """Parse 20 token digits (spaces/dashes allowed) into the 66-bit token number."""
    if isinstance(text, int) and not isinstance(text, bool):
        number = text
    elif isinstance(text, str):
        digits = text.replace(" ", "").replace("-", "")
        if len(digits) != 20 or not digits.isdigit() or not digits.isascii():
            raise TokenFormatError(f"a token has exactly 20 digits, got {text!r}")
        number = int(digits)
    else:
        raise TokenFormatError(f"token must be a digit string, got {type(text).__name__}")
    if not 0 <= number <= TOKEN_MAX:
        raise TokenFormatError(f"token number {text} does not fit in 66 bits")
    return number


def decode_token(
    token: str | int, key: DecoderKey | None = None, *, base_date: int | None = None
) -> StsToken:
    """Decode a token: recover class and block, decrypt, verify the CRC, parse fields.

    ``key`` is needed for classes 0 and 2. With ``base_date`` the TID is also turned
    into the time of issue. Raises :class:`CrcError` when the CRC does not match (wrong
    key/meter or mistyped digits) and :class:`UnsupportedTokenError` for reserved codes.
    """
    number = parse_token_number(token)
    token_class, cipher = untranspose_class(number)
    if token_class == 3:
        raise UnsupportedTokenError("token class 3 is reserved")
    block = cipher if token_class == CLASS_INITIATE else _require_key(key).decrypt(cipher)
    body48 = block >> 16
    crc = block & 0xFFFF
    if _crc(token_class, body48) != crc:
        raise CrcError("token CRC check failed: wrong decoder key, wrong meter or a typo")
    subclass = body48 >> 44
    kind = _KINDS.get((token_class, subclass))
    if kind is None:
        raise UnsupportedTokenError(f"token class {token_class} subclass {subclass} is reserved")
    common = {
        "digits": f"{number:020d}",
        "kind": kind,
        "token_class": token_class,
        "subclass": subclass,
        "data_block": block,
        "crc": crc,
    }
    payload = body48 & ((1 << 44) - 1)
    if kind is TokenKind.METER_TEST:
        return StsToken(**common, control=payload >> 8, manufacturer_code=payload & 0xFF)
    if kind is TokenKind.METER_TEST_4DIGIT_MFR:
        return StsToken(**common, control=payload >> 16, manufacturer_code=payload & 0xFFFF)
    if kind in KEY_CHANGE_KINDS:
        return StsToken(**common, **_key_fields(kind, payload))
    rnd = payload >> 40
    tid = payload >> 16 & TID_MAX
    field16 = payload & 0xFFFF
    when = datetime_from_tid(tid, base_date) if base_date is not None else None
    fields: dict[str, object] = {"rnd": rnd, "tid": tid, "issued_at": when}
    fields["amount_field"] = field16
    if kind in CREDIT_KINDS:
        fields["amount"] = amount_from_tenths(decode_units(field16))
    elif kind in (TokenKind.MAX_POWER, TokenKind.PHASE_UNBALANCE):
        fields["watts"] = decode_units(field16)
    elif kind is TokenKind.CLEAR_CREDIT:
        fields["register"] = field16
    elif kind is TokenKind.SET_TARIFF_RATE:
        fields["rate"] = field16
    else:
        fields["value"] = field16
    return StsToken(**common, **fields)  # type: ignore[arg-type]


def _key_fields(kind: TokenKind, payload: int) -> dict[str, object]:
    key_part = payload & 0xFFFFFFFF
    if kind is TokenKind.KEY_CHANGE_1:
        return {
            "ken_part": payload >> 40 & 0xF,
            "krn": payload >> 36 & 0xF,
            "rollover": bool(payload >> 35 & 1),
            "key_type": payload >> 32 & 0b11,
            "key_part": key_part,
        }
    if kind is TokenKind.KEY_CHANGE_2:
        return {
            "ken_part": payload >> 40 & 0xF,
            "tariff_index": payload >> 32 & 0xFF,
            "key_part": key_part,
        }
    return {"sgc_part": payload >> 32 & 0xFFF, "key_part": key_part}


@dataclass(frozen=True)
class KeyChange:
    """The new key and its parameters, reassembled from decoded key change tokens."""

    new_key: bytes
    krn: int
    tariff_index: int
    key_type: int
    ken: int
    rollover: bool
    sgc: int | None = None


def combine_key_change(tokens: Sequence[StsToken]) -> KeyChange:
    """Reassemble a key change from its 2 (64-bit key) or 4 (128-bit key) decoded tokens."""
    by_kind = {t.kind: t for t in tokens}
    if len(by_kind) != len(tokens) or not set(by_kind) <= set(KEY_CHANGE_KINDS):
        raise UnsupportedTokenError("expected distinct key change section tokens")
    try:
        first = by_kind[TokenKind.KEY_CHANGE_1]
        second = by_kind[TokenKind.KEY_CHANGE_2]
    except KeyError:
        raise UnsupportedTokenError("1st and 2nd key change sections are both required") from None
    parts = (first, second)
    assert all(p.key_part is not None and p.ken_part is not None for p in parts)
    ken = first.ken_part << 4 | second.ken_part  # type: ignore[operator]
    common = {
        "krn": first.krn,
        "tariff_index": second.tariff_index,
        "key_type": first.key_type,
        "ken": ken,
        "rollover": first.rollover,
    }
    if len(tokens) == 2:
        key = (first.key_part << 32 | second.key_part).to_bytes(8, "big")  # type: ignore[operator]
        return KeyChange(new_key=key, **common)  # type: ignore[arg-type]
    try:
        third = by_kind[TokenKind.KEY_CHANGE_3]
        fourth = by_kind[TokenKind.KEY_CHANGE_4]
    except KeyError:
        raise UnsupportedTokenError("a 128-bit key change needs all four sections") from None
    value = first.key_part << 96 | third.key_part << 64 | fourth.key_part << 32  # type: ignore[operator]
    value |= second.key_part  # type: ignore[operator]
    sgc = fourth.sgc_part << 12 | third.sgc_part  # type: ignore[operator]
    return KeyChange(new_key=value.to_bytes(16, "big"), sgc=sgc, **common)  # type: ignore[arg-type]
