"""The measurement store: one home for readings, from the write to the graph.

* `models`: the tables (interval readings, register reads, events, unmapped values,
  daily and hourly energy); `meters/models.py` imports them, so they belong to the `meters` app;
* `quality`: quality flags, how they pack into a row, and the merge rank (once);
* `writes`: the write path (binary COPY for new meter-days, staging + one upsert where a
  rank rises, register and event upserts), table names taken from the models;
* `partitions`: monthly range partitions of the interval table (PostgreSQL);
* `compaction`: closed months packed one row per meter, group and day (PostgreSQL), and
  the view `StoredInterval` every reader of intervals reads (hot + compacted rows);
* `days`: the utility's local day (the unit of rollups and aggregated queries);
* `interval_energy`: energy per interval, derived from cumulative captures;
* `rollups`: daily and hourly energy per meter and channel, kept by the write path;
* `query`: what the graph, the data query, reports and the portal read.

`collection` maps protocol values to channels, validates them and calls `writes`; nothing
outside this package writes readings with SQL of its own.

This module re-exports the models and the quality names, the store's vocabulary.
"""

from .models import (
    HOURS,
    DailyEnergy,
    EventRecord,
    HourlyEnergy,
    IntervalReading,
    RegisterRead,
    StoredInterval,
    UnmappedValue,
)
from .quality import (
    COLUMNS_PER_GROUP,
    VALUE_COLUMNS,
    Quality,
    column_quality,
    pack_quality,
    rank,
    to_decimal,
)

__all__ = [
    "HOURS",
    "COLUMNS_PER_GROUP",
    "VALUE_COLUMNS",
    "DailyEnergy",
    "EventRecord",
    "HourlyEnergy",
    "IntervalReading",
    "Quality",
    "RegisterRead",
    "StoredInterval",
    "UnmappedValue",
    "column_quality",
    "pack_quality",
    "rank",
    "to_decimal",
]
