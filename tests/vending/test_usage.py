"""Credit use from AMI readings next to the vending history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

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
