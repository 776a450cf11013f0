"""Measurements for the dashboard tests, from the simulator's deterministic model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from collection.ingest import ingest_events, ingest_profiles, ingest_registers
from collection.protocols.base import Channel as Col
from collection.protocols.base import MeterEvent, ProfileBlock, ProfileRow, RegisterValue
from collection.simulators import model as sim

PROFILE = "1-0:99.1.0*255"
IMPORT, EXPORT = "1-0:1.29.0*255", "1-0:2.29.0*255"
QH = timedelta(minutes=15)
T0 = datetime(2026, 6, 1, tzinfo=UTC)  # a UTC midnight (the test time zone is UTC)
DAYS = 3
MISSING_AT = 10  # interval index with no import value (the meter had none)
GAP = (40, 41)  # rows absent from the block: ingest estimates them


def k_of(ts: datetime) -> int:
    """The simulator's interval index of an interval ending at `ts`."""
    return int((ts - sim.EPOCH).total_seconds() // sim.INTERVAL_S) - 1


def expected(serial: str, channel: int, i: int) -> int:
    """The model's value of interval i after T0 (interval end T0 + (i+1)*15 min)."""
    return sim.interval_value(serial, channel, k_of(T0 + QH * (i + 1)))


def ingest_days(meter, days: int = DAYS, start: datetime = T0) -> None:
    """`days` of 15-minute import/export from the model, with one missing value and a gap."""
    rows = []
    for i in range(days * 96):
        if start == T0 and i in GAP:
            continue
        ts = start + QH * (i + 1)
        k = k_of(ts)
        imp = (
            None
            if start == T0 and i == MISSING_AT
            else Decimal(sim.interval_value(meter.serial, 1, k))
        )
        rows.append(ProfileRow(ts, (imp, Decimal(sim.interval_value(meter.serial, 2, k)))))
    block = ProfileBlock(PROFILE, (Col(IMPORT, "Wh"), Col(EXPORT, "Wh")), tuple(rows), 900)
    ingest_profiles([(meter, block)])


def ingest_reads(meter, days: int = DAYS) -> None:
    for d in range(days + 1):
        at = T0 + timedelta(days=d)
        ingest_registers(
            [
                (
                    meter,
                    at,
                    [
                        RegisterValue(
                            "1-0:1.8.0*255", Decimal(sim.energy_register(meter.serial, 1, at)), "Wh"
                        )
                    ],
                )
            ]
        )


def ingest_some_events(meter, count: int = 25) -> list[datetime]:
    stamps = [T0 + timedelta(hours=h) for h in range(count)]
    ingest_events(
        [(meter, [MeterEvent(ts, 40 + (h % 3), "0-0:99.98.0*255") for h, ts in enumerate(stamps)])]
    )
    return stamps
