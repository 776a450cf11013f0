from datetime import UTC, datetime, timedelta

import pytest

from collection.simulators import model

T = datetime(2025, 3, 10, 12, 7, 30, tzinfo=UTC)
SERIALS = ["90000001", "90000002", "ABC-17", "90000004"]


@pytest.mark.parametrize("serial", SERIALS)
def test_registers_equal_sum_of_intervals(serial):
    n = model.completed_intervals(T)
    for ch in (1, 2, 3, 4):
        total = sum(model.interval_value(serial, ch, k) for k in range(n))
        assert model.energy_register(serial, ch, T) == total
    t1 = sum(
        model.interval_value(serial, 1, k) for k in range(n) if model.tariff_of_interval(k) == 1
    )
    assert model.tariff_register(serial, 1, T) == t1
    assert model.tariff_register(serial, 1, T) + model.tariff_register(serial, 2, T) == (
        model.energy_register(serial, 1, T)
    )


def test_profile_entries_sum_to_register_difference():
    s = SERIALS[0]
    a, b = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 8, tzinfo=UTC)
    rows = model.profile_entries(s, a + timedelta(minutes=15), b)
    assert len(rows) == 7 * 96
    assert rows[0][0] == a + timedelta(minutes=15) and rows[-1][0] == b
    assert sum(r[1] for r in rows) == model.energy_register(s, 1, b) - model.energy_register(
        s, 1, a
    )
    assert all(v >= 0 for r in rows for v in r[1:])


def test_determinism_and_variety():
    assert model.profile_entries("X1", T - timedelta(days=1), T) == model.profile_entries(
        "X1", T - timedelta(days=1), T
    )
    regs = {model.energy_register(s, 1, T) for s in SERIALS}
    assert len(regs) == len(SERIALS)
    assert model.energy_register("X1", 1, model.EPOCH) == 0
    assert model.profile_entries("X1", model.EPOCH - timedelta(days=3), model.EPOCH) == []


def test_register_constant_within_interval_and_naive_rejected():
    s = SERIALS[1]
    t0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert model.energy_register(s, 1, t0) == model.energy_register(
        s, 1, t0 + timedelta(seconds=899)
    )
    with pytest.raises(ValueError):
        model.completed_intervals(datetime(2025, 1, 1))


def test_max_demand_and_instantaneous():
    s = SERIALS[0]
    w, at = model.max_demand(s, T)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    best = max(
        model.interval_value(s, 1, k)
        for k in range(model.completed_intervals(start), model.completed_intervals(T))
    )
    assert w == 4 * best and start < at <= T
    assert 2250 <= model.instantaneous(s, "1.0.32.7.0.255", T) < 2360
    assert model.instantaneous(s, "1.0.81.7.1.255", T) == 1200
    assert model.instantaneous(s, "1.0.31.7.0.255", T) >= 0


def test_events():
    s = SERIALS[0]
    evs = model.events(s, model.EPOCH, T)
    assert evs and evs == sorted(evs)
    assert {c for _, c in evs} <= set(model.EVENT_NAMES)
    assert model.event_count(s, T) == len(evs)
    mid = evs[len(evs) // 2][0]
    assert model.events(s, mid, mid)[0][0] == mid
