"""Credit use from AMI readings next to the vending history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from collection.ingest import ingest_profiles
from collection.protocols.base import Channel as ProfileChannel
from collection.protocols.base import ProfileBlock, ProfileRow
from vending.usage import energy_used

pytestmark = pytest.mark.django_db


def test_energy_used_sums_the_stored_import_profile(world):
    meter = world.grid_a.meters[0]  # its model has 1-0:1.29.0*255 in Wh (tests/factories.py)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    rows = tuple(
        ProfileRow(start + timedelta(minutes=15 * (i + 1)), (Decimal(250), Decimal(0)))
        for i in range(96 * 2)
    )
    block = ProfileBlock(
        "1-0:99.1.0*255",
        (ProfileChannel("1-0:1.29.0*255", "Wh"), ProfileChannel("1-0:2.29.0*255", "Wh")),
        rows,
        900,
    )
    ingest_profiles([(meter, block)])
    # Two whole days of 96 x 250 Wh = 48.0 kWh.
    used = energy_used(meter, start, start + timedelta(days=2) - timedelta(seconds=1))
    assert used == Decimal("48.000")


def test_no_readings_is_none_not_zero(world):
    meter = world.grid_a.meters[1]
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert energy_used(meter, now - timedelta(days=30), now) is None


def _ingest(meter, start, days, wh):
    rows = tuple(
        ProfileRow(start + timedelta(minutes=15 * (i + 1)), (Decimal(wh), Decimal(0)))
        for i in range(96 * days)
    )
    channels = (ProfileChannel("1-0:1.29.0*255", "Wh"), ProfileChannel("1-0:2.29.0*255", "Wh"))
    ingest_profiles([(meter, ProfileBlock("1-0:99.1.0*255", channels, rows, 900))])


def test_credit_estimate_is_days_left_at_the_recent_use_and_shown_with_the_account(world, settings):
    from django.test import Client

    from tests.vending.conftest import make_vending
    from vending import actions
    from vending.usage import credit_estimate

    settings.TIME_ZONE = "UTC"
    vend = make_vending(world)
    account = vend.account_a
    sold = datetime(2026, 6, 1, 8, tzinfo=UTC)
    now = datetime(2026, 6, 3, 12, tzinfo=UTC)
    assert credit_estimate(account, now) is None  # nothing sold
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    sale = actions.sell(
        account, Decimal("2000.00"), acting_user=vend.clerk_a, shift=shift, now=sold
    )
    assert credit_estimate(account, now) is None  # no readings: no estimate, not zero
    _ingest(account.meter, datetime(2026, 6, 1, tzinfo=UTC), days=2, wh=250)  # 24 kWh a day
    estimate = credit_estimate(account, now)
    assert estimate.remaining_kwh == sale.energy_kwh - Decimal("48.000")
    assert (estimate.kwh_per_day, estimate.days_measured) == (Decimal("24.000"), 2)
    assert estimate.days_left == (estimate.remaining_kwh / 24).quantize(Decimal("0.1"))
    assert estimate.days_left > 0
    assert estimate.runs_out == now + timedelta(days=float(estimate.days_left))
    # Two weeks later with no use since: the credit stays, and no end is in sight.
    _ingest(account.meter, datetime(2026, 6, 3, tzinfo=UTC), days=14, wh=0)
    later = credit_estimate(account, datetime(2026, 6, 17, 12, tzinfo=UTC))
    assert later.remaining_kwh == estimate.remaining_kwh and later.days_left is None
    assert later.kwh_per_day == 0
    # The account's page (at the real time): the last two days before today used 24 kWh each.
    browser = Client()
    browser.force_login(vend.clerk_a)
    today = timezone.localdate()
    recent = datetime.combine(today - timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    assert (
        "no readings of the last 14 days"
        in browser.get(f"/vending/accounts/{account.pk}/").content.decode()
    )
    _ingest(account.meter, recent, days=2, wh=250)
    shown = credit_estimate(account, timezone.now())
    page = browser.get(f"/vending/accounts/{account.pk}/").content.decode()
    assert 'id="credit-estimate"' in page and f"<strong>{shown.remaining_kwh} kWh" in page
    assert f"about <strong>{shown.days_left} days</strong> at 24.000 kWh a day" in page
