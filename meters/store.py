"""The measurement store: interval readings, register reads, events, unmapped values, rollups.

Interval data is stored *wide*: one row per (meter, channel group, interval end) holding up
to eight channel values `v0..v7` as exact integers in units of `10**channel.scaler`, plus
one packed quality word (8 bits per column, see `Quality`). A profile channel's group and
column are fixed on `Channel` (`profile_group`, `profile_column`) when it is created. Wide
rows cost about a third of the bytes per value of a narrow `(meter, channel, ts, value)`
table and ingest several times faster (figures in bench/README.md).

Readings are scoped through their meter (`scope_field = "meter__organisation"`), not a
denormalised organisation column: see docs/architecture.md, "Measurement store".

Reading tables keep `meter_id` as the leading key and carry no database foreign keys to the
meter (the ingest resolves every meter before writing; a per-row FK check would cost ingest
speed on billions of rows). Django still protects a meter with readings from deletion.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import IntFlag

from django.db import models

from accounts.scoping import ScopedQuerySet

from .models import Channel, Meter

__all__ = [
    "COLUMNS_PER_GROUP",
    "VALUE_COLUMNS",
    "Quality",
    "IntervalReading",
    "RegisterRead",
    "EventRecord",
    "UnmappedValue",
    "DailyEnergy",
    "channel_series",
    "stored_column",
    "to_decimal",
]

COLUMNS_PER_GROUP = 8
VALUE_COLUMNS = tuple(f"v{i}" for i in range(COLUMNS_PER_GROUP))


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


# Rank of a value when two reads meet (higher wins; equal keeps what is stored):
# absent 0 < estimated 1 < measured 2 < edited 3. So measured replaces estimated and
# missing, never the reverse, and a repeated read changes nothing.
RANK_ABSENT, RANK_ESTIMATED, RANK_MEASURED, RANK_EDITED = 0, 1, 2, 3


def rank(value: int | None, flags: int) -> int:
    if value is None:
        return RANK_ABSENT
    if flags & Quality.EDITED:
        return RANK_EDITED
    if flags & Quality.ESTIMATED:
        return RANK_ESTIMATED
    return RANK_MEASURED


def to_decimal(value: int | None, scaler: int) -> Decimal | None:
    """A stored integer back to its physical value (`value * 10**scaler`)."""
    return None if value is None else Decimal(value).scaleb(scaler)


def pack_quality(flags: list[int]) -> int:
    """Per-column flag bytes -> one signed 64-bit word (column i in bits 8i..8i+7)."""
    word = 0
    for i, f in enumerate(flags):
        word |= (f & 0xFF) << (8 * i)
    return word - (1 << 64) if word >= 1 << 63 else word


def column_quality(word: int, column: int) -> int:
    return ((word & 0xFFFFFFFFFFFFFFFF) >> (8 * column)) & 0xFF


class _Reading(models.Model):
    objects = ScopedQuerySet.as_manager()
    scope_field = "meter__organisation"

    class Meta:
        abstract = True


class IntervalReading(_Reading):
    """Load-profile values of one meter at one interval end, up to 8 channels in one row.

    On PostgreSQL the table is range-partitioned by month on `ts` (meters/partitions.py).
    """

    pk = models.CompositePrimaryKey("meter_id", "group", "ts")
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    ts = models.DateTimeField(help_text="interval end (UTC)")
    quality = models.BigIntegerField(default=0, db_column="q", help_text="8 flag bits per column")
    v0 = models.BigIntegerField(null=True)
    v1 = models.BigIntegerField(null=True)
    v2 = models.BigIntegerField(null=True)
    v3 = models.BigIntegerField(null=True)
    v4 = models.BigIntegerField(null=True)
    v5 = models.BigIntegerField(null=True)
    v6 = models.BigIntegerField(null=True)
    v7 = models.BigIntegerField(null=True)
    # Last, so the 8-byte columns above need no alignment padding on PostgreSQL.
    group = models.SmallIntegerField(db_column="grp")

    def __str__(self) -> str:
        return f"meter {self.meter_id} group {self.group} at {self.ts:%Y-%m-%d %H:%M}Z"

    def column(self, column: int) -> tuple[int | None, int]:
        """(stored integer, quality flags) of one column."""
        return getattr(self, VALUE_COLUMNS[column]), column_quality(self.quality, column)


class RegisterRead(_Reading):
    """One register value of a meter as read at a time (billing, maximum demand)."""

    pk = models.CompositePrimaryKey("meter_id", "channel_id", "read_at")
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    read_at = models.DateTimeField(help_text="when the meter was read (UTC)")
    value = models.BigIntegerField(help_text="in units of 10**channel.scaler")
    capture_time = models.DateTimeField(null=True, blank=True, help_text="maximum demand time")
    quality = models.SmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"meter {self.meter_id} channel {self.channel_id} at {self.read_at:%Y-%m-%d %H:%M}Z"


class EventRecord(_Reading):
    """One entry of a meter's event log (power failure, tamper, ...)."""

    pk = models.CompositePrimaryKey("meter_id", "log", "ts", "code")
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    log = models.CharField("event log OBIS", max_length=32)
    ts = models.DateTimeField()
    code = models.IntegerField(help_text="the meter's own event code")
    data = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"meter {self.meter_id} event {self.code} at {self.ts:%Y-%m-%d %H:%M}Z"


class UnmappedValue(_Reading):
    """A value the store could not place (unknown OBIS, unit, not exact): kept, never dropped."""

    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    kind = models.CharField(max_length=16)  # profile / register
    obis = models.CharField(max_length=32)
    ts = models.DateTimeField(help_text="interval end or read time (UTC)")
    value = models.CharField(max_length=64, blank=True, help_text="exact decimal text")
    unit = models.CharField(max_length=16, blank=True)
    quality = models.SmallIntegerField(default=0)
    reason = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "kind", "obis", "ts"], name="unmapped_value_unique"
            )
        ]

    def __str__(self) -> str:
        return f"meter {self.meter_id} {self.obis} at {self.ts:%Y-%m-%d %H:%M}Z: {self.reason}"


class DailyEnergy(_Reading):
    """Per meter, channel and local day: the sum of its intervals (kept by ingest)."""

    pk = models.CompositePrimaryKey("meter_id", "channel_id", "day")
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    day = models.DateField(help_text="the utility's local day (settings.TIME_ZONE)")
    value = models.BigIntegerField(help_text="in units of 10**channel.scaler")
    intervals = models.SmallIntegerField(help_text="intervals with a value (92/96/100)")
    estimated = models.SmallIntegerField(default=0, help_text="of which estimated")

    class Meta:
        verbose_name_plural = "daily energy"
        indexes = [models.Index(fields=["day", "channel"], name="daily_energy_day")]

    def __str__(self) -> str:
        return f"meter {self.meter_id} channel {self.channel_id} on {self.day}"


def stored_column(
    meter_id: int, channel: Channel, start: datetime, end: datetime
) -> list[tuple[datetime, int | None, int]]:
    """One meter's profile channel as stored, intervals ending in (start, end]:
    (ts, integer in 10**scaler units or None, flags). Energy of a cumulative channel is
    derived from this by `meters.interval_energy`."""
    column = VALUE_COLUMNS[channel.profile_column]
    rows = (
        IntervalReading.objects.filter(
            meter_id=meter_id, group=channel.profile_group, ts__gt=start, ts__lte=end
        )
        .order_by("ts")
        .values_list("ts", column, "quality")
    )
    return [
        (ts, v, column_quality(q, channel.profile_column))
        for ts, v, q in rows.iterator(chunk_size=5000)
    ]


def channel_series(
    meter_id: int, channel: Channel, start: datetime, end: datetime
) -> list[tuple[datetime, Decimal | None, int]]:
    """One meter's profile channel for intervals ending in (start, end]: (ts, value, flags)."""
    return [
        (ts, to_decimal(v, channel.scaler), flags)
        for ts, v, flags in stored_column(meter_id, channel, start, end)
    ]
