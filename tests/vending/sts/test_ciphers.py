"""EA07 (STA) and EA11 (MISTY1) block ciphers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vending.sts import misty1, sta
from vending.sts.errors import InvalidKeyError

RFC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.mark.parametrize(
    ("plain", "cipher"),
    [(0x0123456789ABCDEF, 0x8B1DA5F56AB3D07C), (0xFEDCBA9876543210, 0x04B68240B13BE95D)],
)
def test_misty1_rfc2994_vectors(plain, cipher):
    assert misty1.encrypt_block(RFC_KEY, plain) == cipher
    assert misty1.decrypt_block(RFC_KEY, cipher) == plain


def test_misty1_sboxes_are_permutations():
    assert sorted(misty1.S7) == list(range(128))
    assert sorted(misty1.S9) == list(range(512))


def test_sta_known_block():
    # Plain data block of reference token 1 (see test_reference_tokens).
    key = bytes.fromhex("e653341f9d5bf36f")
    assert sta.decrypt_block(key, sta.encrypt_block(key, 0x07DC54D20001BAAD)) == 0x07DC54D20001BAAD
    assert sta.encrypt_block(key, 0x07DC54D20001BAAD) != 0x07DC54D20001BAAD


def test_sta_tables_are_bijective():
    assert sorted(sta.PERMUTATION) == list(range(64))
    assert sorted(sta.S1) == sorted(sta.S2) == list(range(16))


@given(st.binary(min_size=8, max_size=8), st.integers(0, (1 << 64) - 1))
def test_sta_round_trip(key, block):
    assert sta.decrypt_block(key, sta.encrypt_block(key, block)) == block


@given(st.binary(min_size=16, max_size=16), st.integers(0, (1 << 64) - 1))
def test_misty1_round_trip(key, block):
    assert misty1.decrypt_block(key, misty1.encrypt_block(key, block)) == block


def test_key_length_errors():
    with pytest.raises(InvalidKeyError):
        sta.encrypt_block(b"short", 0)
    with pytest.raises(InvalidKeyError):
        misty1.encrypt_block(bytes(8), 0)
    with pytest.raises(ValueError):
        sta.encrypt_block(bytes(8), 1 << 64)
