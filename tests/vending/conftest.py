"""Vending fixtures: the `world` of tests/factories.py plus tariffs, keys, stations, clerks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts import roles
from tests.factories import make_user
from vending.choices import StationKind, TariffKind
from vending.models import PrepaidAccount, Tariff, TariffBlock, VendingKey, VendingStation
from vending.sts.pan import luhn_check_digit

VK02_HEX = "abababababababab"
SGC = 123456
NOW = datetime(2025, 5, 5, 5, 5, tzinfo=UTC)


def meter_number(n: int) -> str:
    body = f"{n:010d}"
    return body + luhn_check_digit(body)


@dataclass
class Vending:
    world: object
    flat: Tariff
    block: Tariff
    key: VendingKey
    station_a: VendingStation
    station_b: VendingStation
    clerk_a: object
    clerk_a2: object
    clerk_b: object
    account_a: PrepaidAccount
    account_a2: PrepaidAccount
    account_b: PrepaidAccount
    # A third-party payment system: its own identity, bound to its integration station.
    pay_station_a: VendingStation = None
    integration_a: object = None


def make_vending(world) -> Vending:
    flat = Tariff.objects.create(
        organisation=world.utility, code="FLAT", name="Flat", currency="ZAR",
        price_per_kwh=Decimal("2.0000"),
    )  # fmt: skip
    block = Tariff.objects.create(
        organisation=world.utility, code="BLOCK", name="Lifeline blocks", currency="ZAR",
        kind=TariffKind.BLOCK,
    )  # fmt: skip
    TariffBlock.objects.create(tariff=block, up_to_kwh=Decimal("50"), price_per_kwh=Decimal("1"))
    TariffBlock.objects.create(tariff=block, up_to_kwh=None, price_per_kwh=Decimal("2.5"))
    key = VendingKey.objects.create(organisation=world.utility, sgc=SGC, krn=1, key=VK02_HEX)
    station_a = VendingStation.objects.create(organisation=world.org_a, code="STA", name="North")
    station_b = VendingStation.objects.create(organisation=world.org_b, code="STB", name="South")
    clerk_a = make_user("clerk-a", world.org_a, roles.VENDING_CLERK)
    clerk_a2 = make_user("clerk-a2", world.org_a, roles.VENDING_CLERK)
    clerk_b = make_user("clerk-b", world.org_b, roles.VENDING_CLERK)
    station_a.clerks.add(clerk_a)
    station_b.clerks.add(clerk_b)
    station_a2 = VendingStation.objects.create(organisation=world.org_a, code="STA2", name="N2")
    station_a2.clerks.add(clerk_a2)

    def account(grid, index, n):
        return PrepaidAccount.objects.create(
            customer=grid.customers[index], meter=grid.meters[index], tariff=flat,
            meter_number=meter_number(n), sgc=SGC, krn=1, ti=1, base_date=2014,
        )  # fmt: skip

    pay_station_a = VendingStation.objects.create(
        organisation=world.org_a, code="PAY-A", name="Bank gateway", kind=StationKind.INTEGRATION
    )
    integration_a = make_user("paygate-a", world.org_a, roles.PAYMENT_INTEGRATION)
    pay_station_a.clerks.add(integration_a)

    return Vending(
        world, flat, block, key, station_a, station_b, clerk_a, clerk_a2, clerk_b,
        account(world.grid_a, 0, 1), account(world.grid_a, 1, 2), account(world.grid_b, 0, 3),
        pay_station_a, integration_a,
    )  # fmt: skip


@pytest.fixture
def vend(world):
    return make_vending(world)
