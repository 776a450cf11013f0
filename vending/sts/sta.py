"""EA07: the STS Standard Transfer Algorithm (STA), a 16-round substitution-permutation cipher.

STA is defined in IEC 62055-41 (clause "EA07"). It is *not* DES: a 64-bit block is run
through 16 rounds of nibble substitution (one of two 4-bit S-boxes, chosen per nibble by a
bit of the round key) followed by a fixed 64-bit bit permutation, with the 64-bit decoder
key rotated by one bit per round.

Key schedule as the standard describes it: encryption starts from the one's complement of
the decoder key rotated right by 12 bits and rotates it *left* by one bit after each round;
in round ``r`` the S-box of nibble ``n`` is chosen by bit ``4n + 3`` of the round key
(1 selects S2). Decryption starts from the decoder key itself, undoes the permutation,
chooses the inverse S-box by bit ``4n`` of the round key (bit 1 undoes S1, bit 0 undoes S2)
and rotates the key *right* by one bit per round. Bits are numbered from 0 (LSB) to 63.

Tables: the S-boxes and permutation below are the operational STA tables that the STS
conformance vectors (and the reference tokens in the tests) are generated with. Several
tutorials circulate the *example* tables (S1 = 12, 10, 8, 4, ...; S2 its inverse); tokens
made with those are rejected by real meters, so they are deliberately not used.

The implementation precomputes byte-wide tables that fuse "substitute the two nibbles of
a byte" with "permute their eight bits", so one round costs eight table look-ups.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import InvalidKeyError

_MASK64 = (1 << 64) - 1

# The two substitution boxes of EA07 (S1 is used where the selecting key bit is 0).
S1 = (14, 10, 7, 9, 12, 3, 2, 5, 13, 0, 15, 1, 4, 8, 6, 11)
S2 = (12, 8, 2, 13, 7, 6, 1, 3, 11, 5, 9, 15, 0, 4, 10, 14)
S1_INV = tuple(S1.index(v) for v in range(16))
S2_INV = tuple(S2.index(v) for v in range(16))

# PERMUTATION[b] is the output bit position of input bit b (bit 0 = LSB).
PERMUTATION = (
    55, 42, 10, 18, 24, 21, 44, 35, 2, 22, 56, 43, 27, 58, 9, 50,
    6, 36, 12, 61, 37, 38, 53, 16, 62, 3, 7, 4, 32, 20, 63, 25,
    51, 52, 54, 33, 49, 19, 46, 29, 48, 31, 23, 30, 41, 28, 13, 5,
    40, 60, 39, 11, 15, 17, 1, 0, 57, 34, 59, 8, 47, 14, 45, 26,
)  # fmt: skip
assert sorted(PERMUTATION) == list(range(64))
assert sorted(S1) == sorted(S2) == list(range(16))
INVERSE_PERMUTATION = tuple(PERMUTATION.index(b) for b in range(64))

_SBOXES = (S1, S2)
# Decryption reads the *uncomplemented* key bit, so bit 0 undoes S2 and bit 1 undoes S1.
_INV_SBOXES = (S2_INV, S1_INV)


def _permute_byte(value: int, shift: int, mapping: tuple[int, ...]) -> int:
    out = 0
    for bit in range(8):
        if value >> bit & 1:
            out |= 1 << mapping[shift + bit]
    return out


def _sub_byte(value: int, sel: int, boxes: tuple[tuple[int, ...], ...] = _SBOXES) -> int:
    # sel bit 0 chooses the S-box of the low nibble, bit 1 the one of the high nibble.
    low = boxes[sel & 1][value & 0xF]
    high = boxes[sel >> 1 & 1][value >> 4]
    return high << 4 | low


def _build_tables() -> tuple[tuple, tuple, tuple]:
    # Encryption: substitute then permute, per byte position j and S-box selection.
    enc = tuple(
        tuple(
            tuple(_permute_byte(_sub_byte(v, sel), 8 * j, PERMUTATION) for v in range(256))
            for sel in range(4)
        )
        for j in range(8)
    )
    # Decryption round r is "inverse permute, substitute"; the substitution of round r is
    # fused with the inverse permutation of round r + 1.
    sub_then_unpermute = tuple(
        tuple(
            tuple(
                _permute_byte(_sub_byte(v, sel, _INV_SBOXES), 8 * j, INVERSE_PERMUTATION)
                for v in range(256)
            )
            for sel in range(4)
        )
        for j in range(8)
    )
    unpermute = tuple(
        tuple(_permute_byte(v, 8 * j, INVERSE_PERMUTATION) for v in range(256)) for j in range(8)
    )
    return enc, sub_then_unpermute, unpermute


_ENC, _DEC_SUB_UNPERM, _UNPERM = _build_tables()


def _selectors(key: int, bit_in_nibble: int) -> tuple[int, ...]:
    """Per byte position, the 2-bit S-box selection taken from ``key``."""
    return tuple(
        (key >> (8 * j + bit_in_nibble) & 1) | (key >> (8 * j + 4 + bit_in_nibble) & 1) << 1
        for j in range(8)
    )


def _rotl(value: int, count: int) -> int:
    count %= 64
    return (value << count | value >> (64 - count)) & _MASK64


def _key_int(key: bytes) -> int:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 8:
        raise InvalidKeyError("EA07 (STA) needs a 64-bit (8-byte) decoder key")
    return int.from_bytes(key, "big")


# Last decryption round: plain inverse substitution, as per-byte values shifted in place.
_DEC_LAST = tuple(
    tuple(tuple(_sub_byte(v, sel, _INV_SBOXES) << 8 * j for v in range(256)) for sel in range(4))
    for j in range(8)
)


@lru_cache(maxsize=4096)
def _enc_schedule(key: bytes) -> tuple[tuple, ...]:
    dk = _key_int(key)
    rounds = []
    round_key = _rotl(~dk & _MASK64, -12)
    for _ in range(16):
        sel = _selectors(round_key, 3)
        rounds.append(tuple(_ENC[j][sel[j]] for j in range(8)))
        round_key = _rotl(round_key, 1)
    return tuple(rounds)


@lru_cache(maxsize=4096)
def _dec_schedule(key: bytes) -> tuple[tuple, ...]:
    dk = _key_int(key)
    rounds = []
    round_key = dk
    for r in range(16):
        sel = _selectors(round_key, 0)
        tables = _DEC_SUB_UNPERM if r < 15 else _DEC_LAST
        rounds.append(tuple(tables[j][sel[j]] for j in range(8)))
        round_key = _rotl(round_key, -1)
    return tuple(rounds)


def clear_cache() -> None:
    """Drop cached key schedules (used by the benchmark to measure cold keys)."""
    _enc_schedule.cache_clear()
    _dec_schedule.cache_clear()


def _check_block(block: int) -> None:
    if not 0 <= block <= _MASK64:
        raise ValueError("STA block must be a 64-bit unsigned integer")


def encrypt_block(key: bytes, block: int) -> int:
    """Encrypt a 64-bit block (as an int) with a 64-bit decoder key using EA07."""
    _check_block(block)
    x = block
    for t0, t1, t2, t3, t4, t5, t6, t7 in _enc_schedule(bytes(key)):
        x = (
            t0[x & 0xFF]
            | t1[x >> 8 & 0xFF]
            | t2[x >> 16 & 0xFF]
            | t3[x >> 24 & 0xFF]
            | t4[x >> 32 & 0xFF]
            | t5[x >> 40 & 0xFF]
            | t6[x >> 48 & 0xFF]
            | t7[x >> 56]
        )
    return x


def decrypt_block(key: bytes, block: int) -> int:
    """Decrypt a 64-bit block (as an int) with a 64-bit decoder key using EA07 (DA07)."""
    _check_block(block)
    u = _UNPERM
    x = (
        u[0][block & 0xFF]
        | u[1][block >> 8 & 0xFF]
        | u[2][block >> 16 & 0xFF]
        | u[3][block >> 24 & 0xFF]
        | u[4][block >> 32 & 0xFF]
        | u[5][block >> 40 & 0xFF]
        | u[6][block >> 48 & 0xFF]
        | u[7][block >> 56]
    )
    for t0, t1, t2, t3, t4, t5, t6, t7 in _dec_schedule(bytes(key)):
        x = (
            t0[x & 0xFF]
            | t1[x >> 8 & 0xFF]
            | t2[x >> 16 & 0xFF]
            | t3[x >> 24 & 0xFF]
            | t4[x >> 32 & 0xFF]
            | t5[x >> 40 & 0xFF]
            | t6[x >> 48 & 0xFF]
            | t7[x >> 56]
        )
    return x
