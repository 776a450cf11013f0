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
    assert f"/portal/bills/{month}/" in html  # the PDF once issued (below)


def test_the_current_month_and_nonsense_are_404(world):
    from django.utils import timezone

    client = client_for(world.customer)
    this = f"{timezone.localdate():%Y-%m}"
    for month in (this, "2026-13", "x", "1990-01"):
        assert client.get(f"/portal/bills/{month}/").status_code == 404, month
        assert client.get(f"/portal/bills/{month}/bill.pdf").status_code == 404, month


def test_a_bill_is_issued_once_and_never_changes(world):
    from django.core.management import call_command

    from portal.models import Bill, BillIsFinal

    make_vending(world)
    month = last_month()
    period = Period.month(month)
    meter = world.grid_a.meters[0]
    reads(meter, period, 1_000_000, 1_100_000)
    customer = world.grid_a.customers[0]
    client = client_for(world.customer)
    provisional = client.get(f"/portal/bills/{month}/").content.decode()
    assert "Provisional" in provisional and Bill.objects.count() == 0  # a view never issues
    row = bills.issue(customer, month)
    first_pdf = client.get(f"/portal/bills/{month}/bill.pdf").content
    assert row.billed_kwh == Decimal("100.000") and row.total == Decimal("200.00")
    # A late read, a new price and a renamed customer change nothing already issued.
    RegisterRead.objects.filter(meter=meter).delete()
    reads(meter, period, 1_000_000, 1_900_000)
    world.grid_a.customers[0].__class__.objects.filter(pk=customer.pk).update(name="Renamed")
    html = client.get(f"/portal/bills/{month}/").content.decode()
    assert "100.0 kWh" in html and "Issued" in html
    words = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(first_pdf)).pages)
    again = client.get(f"/portal/bills/{month}/bill.pdf").content
    assert again == first_pdf and customer.name in words and "Renamed" not in words
    assert bills.issue(customer, month).pk == row.pk and Bill.objects.count() == 1
    with pytest.raises(BillIsFinal):
        row.save()
    with pytest.raises(BillIsFinal):
        Bill.objects.filter(pk=row.pk).update(total=0)
    # The monthly run issues everyone else's once; a second run issues nothing.
    out = io.StringIO()
    call_command("portal_issue_bills", "--month", month, "--organisation", "north", stdout=out)
    issued = Bill.objects.filter(month=period.first).count()
    assert Bill.objects.get(customer=customer).pk == row.pk
    assert issued == len(world.grid_a.customers) and f"{issued - 1} bills" in out.getvalue()
    call_command("portal_issue_bills", "--month", month, stdout=(out := io.StringIO()))
    assert Bill.objects.filter(month=period.first).count() == issued + len(world.grid_b.customers)
    call_command("portal_issue_bills", "--month", month, stdout=(out := io.StringIO()))
    assert out.getvalue().strip() == f"0 bills of {month} issued"
    listing = client.get("/portal/bills/").content.decode()
    assert "ZAR" in listing and f"/portal/bills/{month}/bill.pdf" in listing


def test_before_its_issue_day_a_bill_is_provisional_and_not_stored(world, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from portal.models import Bill

    settings.AMI_PORTAL_BILL_GRACE_DAYS = 40  # last month's bill is not due yet
    make_vending(world)
    month = last_month()
    reads(world.grid_a.meters[0], Period.month(month), 1_000_000, 1_100_000)
    client = client_for(world.customer)
    html = client.get(f"/portal/bills/{month}/").content.decode()
    assert "Provisional" in html and "100.0 kWh" in html
    pdf = client.get(f"/portal/bills/{month}/bill.pdf")
    words = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "PROVISIONAL" in words and "provisional" in pdf["Content-Disposition"]
    with pytest.raises(ValueError, match="issued from"):
        bills.issue(world.grid_a.customers[0], month)
    with pytest.raises(CommandError, match="issued from"):
        call_command("portal_issue_bills", "--month", month)
    assert Bill.objects.count() == 0


def test_the_beat_task_issues_last_months_bills_from_their_issue_day(world, settings):
    from portal import tasks
    from portal.models import Bill

    settings.AMI_PORTAL_BILL_GRACE_DAYS = 40
    assert tasks.issue_bills() == 0 and not Bill.objects.exists()
    settings.AMI_PORTAL_BILL_GRACE_DAYS = 0
    everyone = len(world.grid_a.customers) + len(world.grid_b.customers)
    assert tasks.issue_bills() == everyone and tasks.issue_bills() == 0
    assert set(Bill.objects.values_list("month", flat=True)) == {Period.month(last_month()).first}


def test_a_month_is_issued_a_chunk_at_a_time_and_a_killed_run_is_finished_once(world, monkeypatch):
    """Set-based issue: a chunk's bills are what one-by-one gives, in a fixed number of
    queries; a run killed inside a chunk's transaction leaves whole chunks, the next run
    issues each remaining bill once and leaves every issued one as it was."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from meters.models import Customer, GridNode, Meter
    from portal.models import Bill, BillQuerySet

    make_vending(world)
    month = last_month()
    period = Period.month(month)
    grid = world.grid_a
    for i in range(3, 11):  # 8 more homes on the transformer, with all kinds of reads
        point = GridNode.objects.create(
            kind="service_point", parent=grid.transformer, code=f"NA-SP{i}",
            name=f"SP {i}", organisation=world.org_a,
        )  # fmt: skip
        meter = Meter.objects.create(serial=f"NA{i:06d}", meter_model=world.meter_model,
                                     service_point=point, organisation=world.org_a)  # fmt: skip
        Customer.objects.create(account_number=f"NA-ACC-{i}", name=f"Home {i}",
                                service_point=point, tariff_code="R1")  # fmt: skip
        end = None if i % 4 == 0 else 1_000_000 + i * 10_000  # no end read: interval sum
        reads(meter, period, 1_000_000, end, start_quality=Quality.ESTIMATED if i % 3 else 0)
        store_days(meter, days=40)
    for meter in grid.meters:
        reads(meter, period, 2_000_000, 2_300_000)
    north = Customer.objects.filter(organisation=world.org_a).order_by("pk")
    expected = {c.pk: bills.content_of(bills.bill(c, month)) for c in north}
    assert any(content["notes"] for content in expected.values())

    real, calls = BillQuerySet.bulk_create, []

    def killed_in_the_second_chunk(self, objs, *args, **kwargs):
        done = real(self, objs, *args, **kwargs)
        calls.append(len(objs))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")  # inside the chunk's transaction
        return done

    monkeypatch.setattr(BillQuerySet, "bulk_create", killed_in_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        bills.issue_month(month, customers=north, chunk=4)
    monkeypatch.setattr(BillQuerySet, "bulk_create", real)
    first = {b.customer_id: (b.pk, b.issued_at) for b in Bill.objects.all()}
    assert list(first) == [c.pk for c in north[:4]]  # the first chunk, whole; not the second

    with CaptureQueriesContext(connection) as queries:
        assert bills.issue_month(month, customers=north, chunk=4) == len(expected) - 4
    assert len(queries.captured_queries) < 40, len(queries.captured_queries)  # not per bill
    rows = {b.customer_id: b for b in Bill.objects.all()}
    assert sorted(rows) == sorted(expected)  # each customer once
    for pk, (row_pk, issued_at) in first.items():
        assert (rows[pk].pk, rows[pk].issued_at) == (row_pk, issued_at)  # untouched
    for pk, row in rows.items():
        assert row.content == expected[pk], pk
        assert row.organisation_id == world.org_a.pk and row.month == period.first
    # a chunk of customers already billed (a second run at once): nothing stored or changed
    assert bills._issue_chunk(list(north), period, timezone_now()) == 0
    assert {b.customer_id: b.issued_at for b in Bill.objects.all()} == {
        pk: row.issued_at for pk, row in rows.items()
    }


def timezone_now():
    from django.utils import timezone

    return timezone.now()
