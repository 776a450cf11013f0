"""Portal usage periods: day (hourly, from intervals), week, month, year (from the rollups),
last year, TOU rates and the bill estimate (similar homes: test_similar.py)."""

from __future__ import annotations

import calendar
import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from meters.models import Channel
from meters.store import DailyEnergy, RegisterRead
from portal import usage
from tests.meters._data import QH, ingest_days, k_of
from tests.meters.test_pages import client_for
from tests.portal.data import IMPORT, store_days
from tests.vending.conftest import make_vending

pytestmark = pytest.mark.django_db
sim = __import__("collection.simulators.model", fromlist=["interval_value"])


def test_windows_follow_the_calendar():
    today = date(2026, 12, 5)  # a Saturday
    week = usage.window("week", date(2026, 12, 2), today)
    assert (week.first, week.last) == (date(2026, 11, 30), date(2026, 12, 6))
    assert week.previous == date(2026, 11, 23) and week.following is None  # not begun
    month = usage.window("month", date(2026, 2, 14), today)
    assert (month.first, month.last, month.following) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
        date(2026, 3, 1),
    )
    assert usage.window("year", date(2025, 7, 1), today).following == date(2026, 1, 1)
    assert usage.window("day", today, today).previous == date(2026, 12, 4)
    with pytest.raises(ValueError):
        usage.window("fortnight", today, today)


def test_week_month_and_year_equal_the_store_and_last_year_is_compared(world):
    rows = store_days(world.grid_a.meters[0], days=800)
    customer = world.grid_a.customers[0]
    today = timezone.localdate()
    for kind in ("week", "month", "year"):
        win = usage.window(kind, today)
        bars = usage.bars(customer, win)
        in_period = {d: v for d, v in rows.items() if win.first <= d <= win.last}
        got = sum((b.kwh for b in bars if b.kwh is not None), Decimal(0))
        assert got == Decimal(sum(in_period.values())) / 1000, kind
        comparison = usage.compare(customer, win)
        assert comparison.through == today, kind  # the running period: its days so far
        last = {
            d: v for d, v in rows.items()
            if usage._shift_year(win.first, -1) <= d <= usage._shift_year(today, -1)
        }  # fmt: skip
        assert comparison.last_year == Decimal(sum(last.values())) / 1000, kind
    assert len(usage.bars(customer, usage.window("year", today))) == 12
    client = client_for(world.customer)
    answer = client.get(f"/portal/usage.csv?period=week&date={today.isoformat()}")
    lines = list(csv.reader(io.StringIO(answer.content.decode())))
    win = usage.window("week", today)
    assert lines[0] == ["day", "kwh"] and len(lines) == 8
    for label, value in lines[1:]:
        day = date.fromisoformat(label)
        expected = f"{Decimal(rows[day]) / 1000:.3f}" if day in rows else ""
        assert value == expected and win.first <= day <= win.last


def test_a_running_month_is_compared_with_the_same_days_last_year(world):
    """Not a part against a whole: 6 days of December against 6 days of last December (the
    demo showed 41 kWh against last year's whole month, -84%); last year's readings on fewer
    days than this period's give no percentage, and today so far none against a whole day."""
    meter = world.grid_a.meters[0]
    channel = Channel.objects.get(meter_model_id=meter.meter_model_id, obis=IMPORT)

    def days(first: date, count: int, wh: int = 8_000):
        DailyEnergy.objects.bulk_create(
            DailyEnergy(meter=meter, channel=channel, day=first + timedelta(days=i), value=wh,
                        intervals=96)
            for i in range(count)
        )  # fmt: skip

    today = timezone.localdate()
    month = usage.window("month", today, today)
    a_year_before = usage._shift_year(month.first, -1)
    days(a_year_before, calendar.monthrange(a_year_before.year, a_year_before.month)[1])
    days(month.first, today.day)  # this month so far
    customer = world.grid_a.customers[0]
    running = usage.compare(customer, month, today)
    assert running.this == running.last_year == Decimal(8 * today.day)
    assert running.versus_last_year == 0 and running.through == today
    day = usage.compare(customer, usage.window("day", today, today), today)
    assert day.last_year == Decimal(8) and day.versus_last_year is None  # today so far

    before = usage.window("month", month.first - timedelta(days=1), today)  # complete
    length = (before.last - before.first).days + 1
    days(before.first, length)
    days(usage._shift_year(before.last, -1) - timedelta(days=9), 10)  # last year: 10 days
    complete = usage.compare(customer, before, today)
    assert complete.through is None and (complete.this_days, complete.last_year_days) == (
        length,
        10,
    )
    assert complete.versus_last_year is None
    html = client_for(world.customer).get(f"/portal/usage/?period=month&date={before.first}")
    assert f"(readings on 10 of {length} days)" in html.content.decode()


def test_the_day_is_hourly_from_the_intervals_and_adds_up_to_the_rollup(world):
    meter = world.grid_a.meters[0]
    day = timezone.localdate() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)  # the test zone is UTC
    ingest_days(meter, days=1, start=start)
    bars = usage.bars(world.grid_a.customers[0], usage.window("day", day))
    assert len(bars) == 24
    for hour in (0, 13, 23):
        intervals = [start + timedelta(hours=hour) + QH * (i + 1) for i in range(4)]
        wh = sum(sim.interval_value(meter.serial, 1, k_of(ts)) for ts in intervals)
        assert bars[hour].kwh == Decimal(wh) / 1000, hour
    channel = Channel.objects.get(meter_model=meter.meter_model, obis="1-0:1.29.0*255")
    rollup = DailyEnergy.objects.get(meter=meter, channel=channel, day=day).value
    assert sum(b.kwh for b in bars if b.kwh is not None) == Decimal(rollup) / 1000
    page = client_for(world.customer).get(f"/portal/usage/?period=day&date={day.isoformat()}")
    assert page.status_code == 200 and "kWh per hour" in page.content.decode()


def test_time_of_use_from_the_rate_registers(world):
    meter = world.grid_a.meters[0]
    rates = [
        Channel.objects.create(meter_model=meter.meter_model, obis=f"1-0:1.8.{n}*255",
                               name=f"Rate {n}", unit="Wh", kind="register")
        for n in (1, 2)
    ]  # fmt: skip
    today = timezone.localdate()
    first = datetime(today.year, today.month, 1, 1, tzinfo=UTC)
    for channel, (low, high) in zip(
        rates, ((1_000_000, 1_150_000), (500_000, 550_000)), strict=True
    ):
        for at, value in ((first, low), (first + timedelta(hours=5), (low + high) // 2),
                          (timezone.now(), high)):  # fmt: skip
            RegisterRead.objects.create(meter=meter, channel=channel, read_at=at, value=value)
    found = usage.time_of_use(world.grid_a.customers[0], usage.window("month", today))
    assert [(r.name, r.kwh, r.share) for r in found] == [
        ("Rate 1", Decimal("150.000"), Decimal(75)), ("Rate 2", Decimal("50.000"), Decimal(25)),
    ]  # fmt: skip
    html = client_for(world.customer).get("/portal/usage/").content.decode()
    assert "Rate 1" in html and "75%" in html


def test_a_complete_months_rates_run_from_midnight_to_midnight(world):
    """Reads at the month's two bounds (as billing and the demo take them) give its rates; a
    register read once in a period tells nothing and is not shown as 0 kWh."""
    meter = world.grid_a.meters[0]
    rate = Channel.objects.create(meter_model=meter.meter_model, obis="1-0:1.8.1*255",
                                  name="Rate 1", unit="Wh", kind="register")  # fmt: skip
    month = usage.window("month", date(2025, 11, 15), date(2026, 12, 5))
    opening = datetime(2025, 11, 1, tzinfo=UTC)  # the test zone is UTC
    closing = datetime(2025, 12, 1, tzinfo=UTC)
    for at, value in ((opening, 2_000_000), (closing, 2_240_000)):
        RegisterRead.objects.create(meter=meter, channel=rate, read_at=at, value=value)
    customer = world.grid_a.customers[0]
    found = usage.time_of_use(customer, month)
    assert [(r.name, r.kwh, r.share) for r in found] == [("Rate 1", Decimal("240.000"), 100)]
    mid_month = usage.window("week", date(2025, 11, 12), date(2026, 12, 5))
    assert usage.time_of_use(customer, mid_month) == []
    december = usage.window("month", date(2025, 12, 10), date(2026, 12, 5))
    assert usage.time_of_use(customer, december) == []  # only its opening read
    page = client_for(world.customer).get("/portal/usage/?period=month&date=2025-12-10")
    html = page.content.decode()
    assert "No time-of-use figures for this period" in html and "0%" not in html


def test_the_estimate_prices_this_months_pace_with_the_tariff(world):
    vend = make_vending(world)  # the customer's prepaid account: flat 2.00 a kWh
    tariff = vend.account_a.tariff
    tariff.fixed_charge_monthly, tariff.tax_percent = Decimal("50"), Decimal("15")
    tariff.save()
    rows = store_days(world.grid_a.meters[0], days=40, wh=10_000)
    today = timezone.localdate()
    so_far = Decimal(sum(v for d, v in rows.items() if d >= today.replace(day=1))) / 1000
    found = usage.estimate(world.grid_a.customers[0], today)
    days = calendar.monthrange(today.year, today.month)[1]
    if today.day > 1:  # the rate of the whole days before today
        basis = so_far - Decimal(rows[today]) / 1000
        projected = (basis * days / (today.day - 1)).quantize(Decimal("0.1"))
    else:  # the 1st: today so far is all there is
        projected = (so_far * days).quantize(Decimal("0.1"))
    assert found.projected_kwh == projected and found.so_far_kwh == so_far
    energy = (projected * 2).quantize(Decimal("0.01"))
    assert found.energy == energy and found.fixed == Decimal("50.00")
    assert found.tax == (Decimal("7.50") + (energy * Decimal("0.15")).quantize(Decimal("0.01")))
    html = client_for(world.customer).get("/portal/usage/").content.decode()
    assert "estimated" in html and 'id="estimate"' in html
    past = client_for(world.customer).get("/portal/usage/?period=month&date=2025-01-15")
    assert 'id="estimate"' not in past.content.decode()  # only for the running period


def test_the_estimate_is_not_pulled_down_by_today_so_far(world):
    make_vending(world)
    meter, customer = world.grid_a.meters[0], world.grid_a.customers[0]
    rows = store_days(meter, days=40, wh=10_000)
    today = timezone.localdate()
    mid = today if today.day > 1 else today - timedelta(days=1)  # a day with days before it
    first = mid.replace(day=1)
    days = calendar.monthrange(mid.year, mid.month)[1]
    before = Decimal(sum(v for d, v in rows.items() if first <= d < mid)) / 1000
    expected = (before * days / (mid - first).days).quantize(Decimal("0.1"))
    DailyEnergy.objects.filter(meter=meter, day=mid).update(value=500)  # an hour into the day
    found = usage.estimate(customer, mid)
    assert found.projected_kwh == expected and found.days_seen == (mid - first).days
    assert found.so_far_kwh == before + Decimal("0.5")  # today so far is still shown


def test_bad_periods_and_dates_are_404(world):
    client = client_for(world.customer)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    for query in ("period=fortnight", "date=2026-13-01", f"date={tomorrow}", "date=1999-01-01"):
        assert client.get(f"/portal/usage/?{query}").status_code == 404, query
        assert (
            client.get(f"/portal/usage.csv?{query}&period=week").status_code == 404
            or "period=f" in query
        )
