"""Validation and estimation rules on plain series (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collection.validation import (
    Column,
    RegisterPoint,
    Rules,
    Series,
    check_registers,
    status_flags,
    validate_series,
)
from meters.store import Quality

T0 = datetime(2026, 3, 1, tzinfo=UTC)
QH = timedelta(minutes=15)


def series(values, times=None, unit="Wh"):
    times = times or [T0 + QH * (i + 1) for i in range(len(values))]
    return Series(
        1, list(times), {0: Column("1-0:1.29.0*255", unit, list(values), [0] * len(values))}
    )


def test_linear_estimation_of_a_short_gap():
    times = [T0 + QH * k for k in (1, 2, 5, 6)]  # 3 and 4 missing
    s = series([10, 10, 40, 40], times)
    findings, flagged, estimated = validate_series(s, Rules(max_estimated_gap=2), 900)
    assert estimated == 2 and flagged == 0
    assert s.timestamps == [T0 + QH * k for k in range(1, 7)]
    assert s.columns[0].values == [10, 10, 20, 30, 40, 40]
    assert s.columns[0].flags == [0, 0, Quality.ESTIMATED, Quality.ESTIMATED, 0, 0]
    assert [(f.kind, f.count, f.detail) for f in findings] == [("gap", 2, "estimated")]


def test_gap_longer_than_the_limit_is_only_reported():
    times = [T0 + QH * k for k in (1, 2, 6)]
    s = series([10, 10, 40], times)
    findings, _, estimated = validate_series(s, Rules(max_estimated_gap=2), 900)
    assert estimated == 0 and len(s.timestamps) == 3
    assert [(f.kind, f.count, f.start, f.end) for f in findings] == [
        ("gap", 3, T0 + QH * 3, T0 + QH * 5)
    ]


def test_gap_next_to_a_missing_value_is_marked_missing():
    times = [T0 + QH * k for k in (1, 3)]
    s = series([None, 40], times)
    _, _, estimated = validate_series(s, Rules(), 900)
    assert estimated == 0
    assert s.columns[0].values == [None, None, 40]
    assert s.columns[0].flags[1] == Quality.MISSING


def test_spike_and_negative_only_on_energy_channels():
    values = [100] * 20
    values[5], values[7] = 50_000, -3
    s = series(values)
    findings, flagged, _ = validate_series(s, Rules(), 900)
    assert sorted(f.kind for f in findings) == ["negative", "spike"] and flagged == 2
    volts = series([-3] * 10, unit="V")
    findings, flagged, _ = validate_series(volts, Rules(), 900)
    assert findings == [] and flagged == 0


def test_status_byte():
    assert status_flags(None) == 0
    assert status_flags(0x80) == Quality.POWER_DOWN
    assert status_flags(0x22) == Quality.CLOCK_SUSPECT
    assert status_flags(0x04) == Quality.INVALID
    assert status_flags(0x08) == 0  # daylight saving active is not a problem


def test_register_running_backwards():
    points = [
        RegisterPoint(1, 9, "1-0:1.8.0*255", T0, 500, True),
        RegisterPoint(1, 9, "1-0:1.8.0*255", T0 + QH, 499, False),
        RegisterPoint(1, 9, "1-0:1.8.0*255", T0 + 2 * QH, 600, False),
    ]
    findings, bad = check_registers(points)
    assert bad == {(1, 9, T0 + QH)}
    assert [f.kind for f in findings] == ["register_backwards"]


def test_a_channel_that_is_zero_half_the_day_has_no_false_spikes():
    from datetime import UTC, datetime, timedelta

    from collection.validation import DEFAULT_RULES, Column, Series, validate_series

    start = datetime(2026, 6, 1, tzinfo=UTC)
    # Solar export: zero at night, a smooth bell by day; one real spike at noon + 1 h.
    values = [0] * 28 + [min(i, 40 - i) * 40 for i in range(40)] + [0] * 28
    values[52] = 40_000
    stamps = [start + timedelta(minutes=15 * (i + 1)) for i in range(96)]
    column = Column("1-0:2.29.0*255", "Wh", values, [0] * 96)
    series = Series(1, stamps, {0: column})
    findings, _flagged, _estimated = validate_series(series, DEFAULT_RULES)
    spikes = [f for f in findings if f.kind == "spike"]
    assert [f.start for f in spikes] == [stamps[52]]
