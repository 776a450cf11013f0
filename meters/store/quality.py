"""Quality flags of stored values, how they pack into a row, and the merge rank.

An interval row holds up to `COLUMNS_PER_GROUP` channel values `v0..v7` and ONE signed
64-bit quality word: 8 flag bits per column, column i in bits 8i..8i+7. A register read
carries its own flags.

When two reads of one value meet, the higher rank wins and an equal rank keeps what is
stored: absent < estimated < measured < edited. So a measured value replaces an estimate
or a gap, never the reverse, a person's correction is never overwritten, and a repeated
read changes nothing. `rank` is that rule in Python, `rank_sql` the same rule as SQL for
the store's upserts; both come from `_FLAG_RANKS`.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntFlag

COLUMNS_PER_GROUP = 8
VALUE_COLUMNS = tuple(f"v{i}" for i in range(COLUMNS_PER_GROUP))
_WORD = 1 << 64


class Quality(IntFlag):
    """Quality flags of one value (8 bits: one byte per column of an interval row)."""

    ESTIMATED = 1  # filled in by the head-end (gap estimation)
    EDITED = 2  # corrected by a person; ingest never overwrites it
    MISSING = 4  # the meter had no value for this interval
    CLOCK_SUSPECT = 8  # the meter's clock was invalid or adjusted in this interval
    POWER_DOWN = 16  # the meter was without supply during the interval
    SPIKE = 32  # validation: far above the channel's usual values
    NEGATIVE = 64  # validation: negative consumption / register ran backwards
    INVALID = 128  # the meter itself marked the data not valid


RANK_ABSENT, RANK_ESTIMATED, RANK_MEASURED, RANK_EDITED = 0, 1, 2, 3
# A present value's rank: the first of these flags it carries, else RANK_MEASURED.
_FLAG_RANKS = ((Quality.EDITED, RANK_EDITED), (Quality.ESTIMATED, RANK_ESTIMATED))


def rank(value: int | None, flags: int) -> int:
    """Rank of one value when two reads of it meet (higher wins; equal keeps the stored)."""
    if value is None:
        return RANK_ABSENT
    for flag, flag_rank in _FLAG_RANKS:
        if flags & flag:
            return flag_rank
    return RANK_MEASURED


def rank_sql(flags: str, *, column: int = 0, value: str | None = None) -> str:
    """`rank` as an SQL expression over a flags expression (the byte of `column` in a
    packed word) and, when it can be NULL, the value expression."""
    whens = [f"WHEN {value} IS NULL THEN {RANK_ABSENT}"] if value else []
    whens += [
        f"WHEN ({flags} & {int(flag) << (8 * column)}) <> 0 THEN {flag_rank}"
        for flag, flag_rank in _FLAG_RANKS
    ]
    return f"(CASE {' '.join(whens)} ELSE {RANK_MEASURED} END)"


def signed64(word: int) -> int:
    """An unsigned 64-bit word as PostgreSQL's signed bigint holds it."""
    return word - _WORD if word >= 1 << 63 else word


def column_mask(column: int) -> int:
    """The quality bits of one column, as a signed bigint."""
    return signed64(0xFF << (8 * column))


def pack_quality(flags: list[int]) -> int:
    """Per-column flag bytes -> one signed 64-bit word (column i in bits 8i..8i+7)."""
    word = 0
    for i, f in enumerate(flags):
        word |= (f & 0xFF) << (8 * i)
    return signed64(word)


def column_quality(word: int, column: int) -> int:
    """The flags of one column in a packed word (signed or not: Python shifts a negative
    int as infinite two's complement, so the byte comes out the same)."""
    return (word >> (8 * column)) & 0xFF


def to_decimal(value: int | None, scaler: int) -> Decimal | None:
    """A stored integer back to its physical value (`value * 10**scaler`)."""
    if value is None:
        return None
    return Decimal(value).scaleb(scaler) if scaler else Decimal(value)
