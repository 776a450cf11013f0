"""One way to show times, energy and money (amisite/display.py), on every page and receipt."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from amisite import display

LONG_DECIMAL = re.compile(r"\d\.\d{4,}")


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    timezone.activate("Europe/Berlin")
    yield
    timezone.deactivate()


def test_times_are_local_with_the_zone(berlin):
    moment = datetime(2026, 6, 1, 12, 0, 5, 123456, tzinfo=UTC)
    assert display.when(moment) == "2026-06-01 14:00 CEST"
    assert display.when(moment, seconds=True) == "2026-06-01 14:00:05 CEST"
    assert display.when("2026-01-01T00:00:00+00:00") == "2026-01-01 01:00 CET"
    assert display.when(None) == display.EMPTY


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        ("8712345", "Wh", "8.712 MWh"),
        ("871234", "Wh", "871.234 kWh"),
        ("1234567890", "Wh", "1,234.568 MWh"),
        ("123456789", "Wh", "123.457 MWh"),
        ("100", "Wh", "0.100 kWh"),
        ("1.5", "kWh", "1.500 kWh"),
        ("2750", "W", "2.750 kW"),
        ("4321", "varh", "4.321 kvarh"),
        ("230.14", "V", "230.1 V"),
        ("4.125", "A", "4.13 A"),
        ("50.01", "Hz", "50.01 Hz"),
        ("12345", "", "12,345"),
        (None, "Wh", display.EMPTY),
    ],
)
def test_quantities(value, unit, shown):
    assert display.quantity(value, unit) == shown


def test_money_and_prepaid_energy():
    assert display.money(Decimal("6.52000000000000")) == "6.52"
    assert display.money("1234.5", "ZAR") == "ZAR 1,234.50"
    assert display.money(Decimal("0.005")) == "0.01"  # half up, as a cashier rounds
    assert display.energy_kwh(Decimal("173.900000000000")) == "173.9 kWh"
    assert display.energy_kwh("12345.67") == "12,345.7 kWh"


@pytest.mark.django_db
def test_vending_reports_are_quantised_on_the_page_and_in_csv(world):
    from tests.vending.conftest import make_vending
    from vending import actions

    vend = make_vending(world)
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    for amount in ("100.00", "73.90", "1200.00"):
        actions.sell(vend.account_a, Decimal(amount), acting_user=vend.clerk_a, shift=shift)
    client = Client()
    client.force_login(world.superuser)
    html = client.get("/vending/reports/").content.decode()
    assert not LONG_DECIMAL.search(html)
    assert "1,373.90" in html  # the day's amount, grouped
    csv = client.get("/vending/reports/", {"csv": "by-tariff"}).content.decode()
    assert not LONG_DECIMAL.search(csv) and ",1373.90," in csv


@pytest.mark.django_db
def test_home_server_time_is_not_an_iso_string(world, berlin):
    client = Client()
    client.force_login(world.operator_a)
    html = client.get("/").content.decode()
    shown = html.split('id="status-server-time">')[1].split("<")[0]
    assert "T" not in shown.split(" ")[0] and shown.endswith(("CET", "CEST"))
    assert "+00:00" not in html
