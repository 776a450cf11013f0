"""EA11: the MISTY1 block cipher (RFC 2994), 64-bit block, 128-bit key, 8 rounds.

Written from the algorithm description in RFC 2994 section 2 and checked against the
test vectors of its appendix. Blocks are handled as 64-bit unsigned integers whose
big-endian byte form is the RFC's byte string.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import InvalidKeyError

# The S-boxes S7 (7-bit) and S9 (9-bit) of RFC 2994 section 2.3, packed as hex strings
# (2 hex digits per S7 entry, 3 per S9 entry).
_S7_HEX = (
    "1b32335a3b1017545b1a72736b2c66491f24136c372e3f4a5d0f405625511c04"
    "0b46200d7b3544422b1e41144b79156f0e550936740c6753280a7e3802076029"
    "1912652f303908685f782a4c6445753d594803577c4f623c1d215e276a704d3a"
    "016d6e6318772305267600312d7a7f61502211064716524e713e6943345c587d"
)
_S9_HEX = (
    "1c30cb15319f1e30e90fb0351810b91171eb13300902d0d30c714a03707e0eb1641931d80a311e05502c01d1a2163118"
    "14b1521d200f02b03013a0e511113818e0630e30c81f401b00109d0f81a016d1f301c14607d0d10821ea18312d0f419e"
    "1d30dd1e21281e00ec05909101112f0260dc0b018c10f1f70e716c0b60f90d815110114c1030b815412b1ae01707100c"
    "04705807f1a413412908415d19d1b21a304807c0511ca02313d1a716503b0420da1920ce0c106b09f1f112c1840fa196"
    "1e116917d03118010a0941da18613e11c0601751cf06711906506809915000800717c0b70240190de1270db0e41a9052"
    "10909019c1c10281b313516a1760df1e51880c516e1de1b10c31df0360ee1ee0f009304909a1b606908112500b05e0b4"
    "1491c717403e13b1b708e1c60ae0100951ef04e0f21fd0850fd0f60a016f08308a15609b13c1071670981d01e90031fe"
    "0bd1220890d218f01203306a1420ed17011b0e214f15813114705d1131cd0791611a517909e1b40cc02213201a0e8004"
    "1871ed1970391bf1d702718b0c609c0d014e06c0341f206e0ca0250ba1910fe01310602f1ad1721db0c010b1d60f51ec"
    "10d0761141ab07510c1e415905411f04b0c41be0f70290a400e1f007704d17a08608b0b31710bf10e10409715b160168"
    "0d70bb0661ce0fc0921c506f01604a0a11390af0f119000a1aa14317b05618d1660d41fb14d19419a0871f81230a71b8"
    "14103c1f914002a15511a1a11980d51261af06112e1571dc07218a0aa0961150ef04507b08d14505305f1780b202e020"
    "1d503f1c91e71ac0440380140b116b0ab0b505a1821c81d40181770640cf06d10019913015a0051201bb1bd0e004f0d6"
    "13f1c412a0150060ff19b0a604308805015f1e812107317e0bc0c20c91731891f50741cc1e61a819501f04100d1ba032"
    "03d1d10800a80571b91621480d910506207a0211ff1121081c00a911d1b01a60cd0f305c10205b1d91441f60ad0a503a"
    "1cb13617f0460e101e1dd0e61371fa18508c08f0401b50be0780000ac11015e1240021bc0a20ea0701fc11615c04c1c2"
)
S7 = tuple(int(_S7_HEX[i : i + 2], 16) for i in range(0, len(_S7_HEX), 2))
S9 = tuple(int(_S9_HEX[i : i + 3], 16) for i in range(0, len(_S9_HEX), 3))
# Both are bijections; a transcription slip would break this.
assert sorted(S7) == list(range(128)) and sorted(S9) == list(range(512))

_M32 = 0xFFFFFFFF


def _fi(value: int, subkey: int) -> int:
    """The 16-bit FI function (two S9 layers around an S7 layer)."""
    d9 = value >> 7
    d7 = value & 0x7F
    d9 = S9[d9] ^ d7
    d7 = (S7[d7] ^ d9) & 0x7F
    d7 ^= subkey >> 9
    d9 ^= subkey & 0x1FF
    d9 = S9[d9] ^ d7
    return d7 << 9 | d9


def _expand_key(key: bytes) -> tuple[int, ...]:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise InvalidKeyError("EA11 (MISTY1) needs a 128-bit (16-byte) decoder key")
    ek = [int.from_bytes(key[2 * i : 2 * i + 2], "big") for i in range(8)]
    ek += [_fi(ek[i], ek[(i + 1) % 8]) for i in range(8)]
    return tuple(ek)


class Misty1:
    """MISTY1 with a fixed 128-bit key; round sub-keys are precomputed once."""

    __slots__ = ("_fl", "_fo")

    def __init__(self, key: bytes) -> None:
        ek = _expand_key(bytes(key))
        # FO round k uses (KO1, KI1, KO2, KI2, KO3, KI3, KO4), RFC 2994 section 2.3.
        self._fo = tuple(
            (
                ek[k],
                ek[(k + 5) % 8 + 8],
                ek[(k + 2) % 8],
                ek[(k + 1) % 8 + 8],
                ek[(k + 7) % 8],
                ek[(k + 3) % 8 + 8],
                ek[(k + 4) % 8],
            )
            for k in range(8)
        )
        # FL layer n uses an AND key and an OR key, chosen by the parity of n.
        fl = []
        for n in range(10):
            if n % 2 == 0:
                fl.append((ek[n // 2], ek[(n // 2 + 6) % 8 + 8]))
            else:
                fl.append((ek[((n - 1) // 2 + 2) % 8 + 8], ek[((n - 1) // 2 + 4) % 8]))
        self._fl = tuple(fl)

    def _fo_fn(self, value: int, k: int) -> int:
        ko1, ki1, ko2, ki2, ko3, ki3, ko4 = self._fo[k]
        t0 = value >> 16
        t1 = value & 0xFFFF
        t0 = _fi(t0 ^ ko1, ki1) ^ t1
        t1 = _fi(t1 ^ ko2, ki2) ^ t0
        t0 = _fi(t0 ^ ko3, ki3) ^ t1
        t1 ^= ko4
        return t1 << 16 | t0

    def _fl_fn(self, value: int, n: int) -> int:
        and_key, or_key = self._fl[n]
        d0 = value >> 16
        d1 = value & 0xFFFF
        d1 ^= d0 & and_key
        d0 ^= d1 | or_key
        return d0 << 16 | d1

    def _fl_inv(self, value: int, n: int) -> int:
        and_key, or_key = self._fl[n]
        d0 = value >> 16
        d1 = value & 0xFFFF
        d0 ^= d1 | or_key
        d1 ^= d0 & and_key
        return d0 << 16 | d1

    def encrypt_block(self, block: int) -> int:
        """Encrypt one 64-bit block given as an unsigned integer."""
        if not 0 <= block < 1 << 64:
            raise ValueError("MISTY1 block must be a 64-bit unsigned integer")
        d0 = block >> 32
        d1 = block & _M32
        for r in (0, 2, 4, 6):
            d0 = self._fl_fn(d0, r)
            d1 = self._fl_fn(d1, r + 1)
            d1 ^= self._fo_fn(d0, r)
            d0 ^= self._fo_fn(d1, r + 1)
        d0 = self._fl_fn(d0, 8)
        d1 = self._fl_fn(d1, 9)
        return d1 << 32 | d0

    def decrypt_block(self, block: int) -> int:
        """Decrypt one 64-bit block given as an unsigned integer."""
        if not 0 <= block < 1 << 64:
            raise ValueError("MISTY1 block must be a 64-bit unsigned integer")
        d1 = block >> 32
        d0 = block & _M32
        d0 = self._fl_inv(d0, 8)
        d1 = self._fl_inv(d1, 9)
        for r in (6, 4, 2, 0):
            d0 ^= self._fo_fn(d1, r + 1)
            d1 ^= self._fo_fn(d0, r)
            d0 = self._fl_inv(d0, r)
            d1 = self._fl_inv(d1, r + 1)
        return d0 << 32 | d1


@lru_cache(maxsize=4096)
def _cipher(key: bytes) -> Misty1:
    return Misty1(key)


def encrypt_block(key: bytes, block: int) -> int:
    """Encrypt a 64-bit block (as an int) with a 128-bit key."""
    return _cipher(bytes(key)).encrypt_block(block)


def decrypt_block(key: bytes, block: int) -> int:
    """Decrypt a 64-bit block (as an int) with a 128-bit key."""
    return _cipher(bytes(key)).decrypt_block(block)
