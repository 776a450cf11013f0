"""Portal bills: the billing determinants of a month, priced, with what was estimated and
why; history from the rollups; the PDF; only complete months of the customer's own."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from meters.models import Channel
from meters.store import RegisterRead
from meters.store.quality import Quality
from portal import bills
from portal.activation import bill_code
from portal.customers import month_start
from reports.billing import Period
from tests.meters._data import ingest_days
from tests.meters.test_pages import client_for
from tests.portal.data import store_days
from tests.vending.conftest import make_vending

pytestmark = pytest.mark.django_db


def last_month() -> str:
    from django.utils import timezone

    return f"{month_start(timezone.localdate(), 1):%Y-%m}"


def reads(meter, period: Period, start_wh: int, end_wh: int | None, start_quality: int = 0):
    """Reads of import (and export: a tenth) at the month's bounds; `end_wh` None: no end."""
    for obis, share in (("1-0:1.8.0*255", 1), ("1-0:2.8.0*255", 10)):
        channel = Channel.objects.get(meter_model=meter.meter_model, obis=obis)
        RegisterRead.objects.create(
            meter=meter, channel=channel, read_at=period.start + timedelta(minutes=5),
            value=start_wh // share, quality=start_quality,
        )  # fmt: skip
        if end_wh is not None:
            RegisterRead.objects.create(
                meter=meter, channel=channel, read_at=period.end - timedelta(minutes=5),
                value=end_wh // share,
            )  # fmt: skip


def test_a_bill_from_actual_reads_is_priced_and_says_nothing_was_estimated(world):
    make_vending(world)  # the customer's prepaid tariff: flat 2.00 a kWh
    month = last_month()
    period = Period.month(month)
    reads(world.grid_a.meters[0], period, 1_000_000, 1_250_500)
    days = (period.last - period.first).days + 1
    ingest_days(world.grid_a.meters[0], days=days, start=period.start)  # every interval
    reads(world.grid_a.meters[1], period, 5_000_000, 9_000_000)  # the neighbour's
    found = bills.bill(world.grid_a.customers[0], month)
    assert found.billed_kwh == Decimal("250.500")
    assert found.energy == Decimal("501.00") and found.total == Decimal("501.00")
    assert found.notes == [] and not found.held
    html = client_for(world.customer).get(f"/portal/bills/{month}/").content.decode()
    assert "Nothing: every figure comes from actual meter reads." in html
    assert "250.5 kWh" in html and world.grid_a.meters[1].serial not in html
    assert bill_code(world.grid_a.customers[0], month) in html


def test_estimated_and_missing_reads_are_named_with_the_reason(world):
    make_vending(world)
    month = last_month()
    period = Period.month(month)
    meter = world.grid_a.meters[0]
    reads(meter, period, 1_000_000, None, start_quality=int(Quality.ESTIMATED))
    ingest_days(meter, days=3, start=period.start)  # 3 days of intervals, the rest missing
    found = bills.bill(world.grid_a.customers[0], month)
    text = " ".join(found.notes)
    assert "start read of Active energy import of meter" in text and "was estimated" in text
    assert "end is missing" in text and "15-minute values" in text
    assert "are missing" in text and found.held and "checks this bill" in text
    assert found.billed_kwh is not None and found.billed_kwh > 0  # the interval sum
    client = client_for(world.customer)
    html = client.get(f"/portal/bills/{month}/").content.decode()
    assert "interval sum" in html and "The utility checks this bill" in html
    pdf = client.get(f"/portal/bills/{month}/bill.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    words = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "What was estimated" in words and "was estimated" in words
    assert world.grid_a.customers[0].account_number in words


def test_history_lists_complete_months_from_the_rollups(world):
    rows = store_days(world.grid_a.meters[0], days=100)
    listed = dict(bills.months(world.grid_a.customers[0]))
    month = last_month()
    start = month_start(Period.month(month).first)
    expected = sum(v for d, v in rows.items() if f"{d:%Y-%m}" == month) / Decimal(1000)
    assert listed[month] == expected and len(listed) == bills.HISTORY_MONTHS
    assert f"{start:%Y-%m}" in listed
    html = client_for(world.customer).get("/portal/bills/").content.decode()
    assert f"/portal/bills/{month}/bill.pdf" in html


def test_the_current_month_and_nonsense_are_404(world):
    from django.utils import timezone

    client = client_for(world.customer)
    this = f"{timezone.localdate():%Y-%m}"
    for month in (this, "2026-13", "x", "1990-01"):
        assert client.get(f"/portal/bills/{month}/").status_code == 404, month
        assert client.get(f"/portal/bills/{month}/bill.pdf").status_code == 404, month
