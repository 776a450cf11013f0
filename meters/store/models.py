"""The store's tables: interval readings, register reads, events, unmapped values, daily energy;
and the view of every stored interval, hot and compacted (`StoredInterval`).

Interval data is stored *wide*: one row per (meter, channel group, interval end) holding up
to eight channel values `v0..v7` as exact integers in units of `10**channel.scaler`, plus
one packed quality word (8 bits per column, see `meters.store.quality`). A profile
channel's group and column are fixed on `Channel` (`profile_group`, `profile_column`) when
it is created.

Readings are scoped through their meter (`scope_field = "meter__organisation"`), not a
denormalised organisation column: see docs/architecture.md, "Measurement store".

Reading tables keep `meter_id` as the leading key and carry no database foreign keys to the
meter (the ingest resolves every meter before writing; a per-row FK check would cost ingest
speed on billions of rows). Django still protects a meter with readings from deletion.
The models belong to the `meters` app (their tables keep the `meters_` names); foreign keys
name their targets as strings, so `meters/models.py` can import this module.
"""

from __future__ import annotations

from django.db import models

from accounts.scoping import ScopedQuerySet

from .quality import VALUE_COLUMNS, column_quality


class _Reading(models.Model):
    objects = ScopedQuerySet.as_manager()
    scope_field = "meter__organisation"

    class Meta:
        abstract = True


class _WideRow(_Reading):
    """Up to 8 channel values of one interval row (`quality` packs their flags)."""

    v0 = models.BigIntegerField(null=True)
    v1 = models.BigIntegerField(null=True)
    v2 = models.BigIntegerField(null=True)
    v3 = models.BigIntegerField(null=True)
    v4 = models.BigIntegerField(null=True)
    v5 = models.BigIntegerField(null=True)
    v6 = models.BigIntegerField(null=True)
    v7 = models.BigIntegerField(null=True)

    def __str__(self) -> str:
        return f"meter {self.meter_id} group {self.group} at {self.ts:%Y-%m-%d %H:%M}Z"

    def column(self, column: int) -> tuple[int | None, int]:
        """(stored integer, quality flags) of one column."""
        return getattr(self, VALUE_COLUMNS[column]), column_quality(self.quality, column)

    class Meta:
        abstract = True


class IntervalReading(_WideRow):
    """Load-profile values of one meter at one interval end, up to 8 channels in one row.

    On PostgreSQL the table is range-partitioned by month on `ts` (`meters.store.partitions`).
    """

    pk = models.CompositePrimaryKey("meter_id", "group", "ts")
    meter = models.ForeignKey(
        "meters.Meter", on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    ts = models.DateTimeField(help_text="interval end (UTC)")
    quality = models.BigIntegerField(default=0, db_column="q", help_text="8 flag bits per column")
    # Last, so the 8-byte columns above need no alignment padding on PostgreSQL.
    group = models.SmallIntegerField(db_column="grp")


class StoredInterval(_WideRow):
    """Read-only: every stored interval row, from the interval table and unpacked from the
    compacted closed months (the view `meters_interval`, `meters.store.compaction`).

    Same columns as `IntervalReading` plus `day`, the UTC day of `ts`: bound it
    (`compaction.day_bounds`) so PostgreSQL reads only the months and compacted days asked.
    Readers of intervals read this; writers write `IntervalReading`.
    """

    pk = models.CompositePrimaryKey("meter_id", "group", "ts")
    meter = models.ForeignKey(
        "meters.Meter", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    ts = models.DateTimeField()
    quality = models.BigIntegerField(db_column="q")
    group = models.SmallIntegerField(db_column="grp")
    day = models.DateField()

    class Meta:
        managed = False
        db_table = "meters_interval"


class RegisterRead(_Reading):
    """One register value of a meter as read at a time (billing, maximum demand)."""

    pk = models.CompositePrimaryKey("meter_id", "channel_id", "read_at")
    meter = models.ForeignKey(
        "meters.Meter", on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    channel = models.ForeignKey(
        "meters.Channel", on_delete=models.PROTECT, db_constraint=False, related_name="+"
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
        "meters.Meter", on_delete=models.PROTECT, db_constraint=False, related_name="+"
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
        "meters.Meter", on_delete=models.PROTECT, db_constraint=False, related_name="+"
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


class _ChannelDay(_Reading):
    """A rollup row: one meter's profile channel on one local day."""

    pk = models.CompositePrimaryKey("meter_id", "channel_id", "day")
    meter = models.ForeignKey(
        "meters.Meter", on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    channel = models.ForeignKey(
        "meters.Channel", on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    day = models.DateField(help_text="the utility's local day (settings.TIME_ZONE)")

    class Meta:
        abstract = True


class DailyEnergy(_ChannelDay):
    """Per meter, channel and local day: the sum of its intervals (kept by ingest)."""

    value = models.BigIntegerField(help_text="in units of 10**channel.scaler")
    intervals = models.SmallIntegerField(help_text="intervals with a value (92/96/100)")
    estimated = models.SmallIntegerField(default=0, help_text="of which estimated")

    class Meta:
        verbose_name_plural = "daily energy"
        indexes = [models.Index(fields=["day", "channel"], name="daily_energy_day")]

    def __str__(self) -> str:
        return f"meter {self.meter_id} channel {self.channel_id} on {self.day}"


HOURS = [f"h{h:02d}" for h in range(24)]  # HourlyEnergy's columns, local hour 0..23


class HourlyEnergy(_ChannelDay):
    """Per meter, channel and local day: the energy of each local hour (kept beside
    `DailyEnergy` by the same refresh, so load-shape reports never group intervals).

    `hNN`: the sum of the intervals *ending* in local hour NN (the 00:00 end closes hour 23
    of the day before, as for the day); NULL when none of them has a value. The hour that
    repeats on the autumn DST day holds both of its hours, the spring day's missing hour is
    NULL.
    """

    h00 = models.BigIntegerField(null=True)
    h01 = models.BigIntegerField(null=True)
    h02 = models.BigIntegerField(null=True)
    h03 = models.BigIntegerField(null=True)
    h04 = models.BigIntegerField(null=True)
    h05 = models.BigIntegerField(null=True)
    h06 = models.BigIntegerField(null=True)
    h07 = models.BigIntegerField(null=True)
    h08 = models.BigIntegerField(null=True)
    h09 = models.BigIntegerField(null=True)
    h10 = models.BigIntegerField(null=True)
    h11 = models.BigIntegerField(null=True)
    h12 = models.BigIntegerField(null=True)
    h13 = models.BigIntegerField(null=True)
    h14 = models.BigIntegerField(null=True)
    h15 = models.BigIntegerField(null=True)
    h16 = models.BigIntegerField(null=True)
    h17 = models.BigIntegerField(null=True)
    h18 = models.BigIntegerField(null=True)
    h19 = models.BigIntegerField(null=True)
    h20 = models.BigIntegerField(null=True)
    h21 = models.BigIntegerField(null=True)
    h22 = models.BigIntegerField(null=True)
    h23 = models.BigIntegerField(null=True)

    class Meta:
        verbose_name_plural = "hourly energy"

    def __str__(self) -> str:
        return f"meter {self.meter_id} channel {self.channel_id} hours of {self.day}"

    @property
    def hours(self) -> list[int | None]:
        return [getattr(self, name) for name in HOURS]
