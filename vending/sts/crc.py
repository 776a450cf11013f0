"""CRC-16 of the STS token data (IEC 62055-41, polynomial x^16 + x^15 + x^2 + 1)."""

from __future__ import annotations

# Reflected form of x^16 + x^15 + x^2 + 1 (0x8005), processed LSB first.
_POLY_REFLECTED = 0xA001


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_bytes(data: bytes, init: int = 0xFFFF) -> int:
    """Plain reflected CRC-16 (0xA001, given init, no final XOR) over ``data``."""
    crc = init
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc
