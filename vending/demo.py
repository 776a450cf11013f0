"""Vending's part of the demo utility (meters/demo.py): a newcomer sells a token in a minute.

Per region: one station with the region's clerk (`north-clerk`, `south-clerk`), prepaid
accounts on the region's first meters with valid STS meter numbers, a closed shift three
days ago with a few sales in it, and an open shift now, so the clerk signs in and sells.
The utility holds the tariffs and a TEST vending key (DKGA02) for the demo supply group.
Everything goes through `vending.actions`, as a clerk's own sales would.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from meters.models import Customer, Meter

from . import actions
from .choices import TariffKind
from .models import PrepaidAccount, Tariff, TariffBlock, VendingKey, VendingStation
from .sts.pan import luhn_check_digit

DEMO_SGC = 123457
DEMO_VENDING_KEY = "0abc12def3456789"  # a TEST key: never load it into a real meter
ACCOUNTS_PER_REGION = 6
PAST_SALES = (Decimal("50.00"), Decimal("120.00"), Decimal("75.50"))


def demo_meter_number(serial: str) -> str:
    """An 11-digit STS meter number for a demo meter: "01" + serial + Luhn check digit."""
    body = f"01{int(serial):08d}"
    return body + luhn_check_digit(body)


def load_demo_vending(demo) -> None:
    utility = demo.utility
    VendingKey.objects.create(
        organisation=utility, sgc=DEMO_SGC, krn=1, key=DEMO_VENDING_KEY,
        label="demo supply group (TEST key)",
    )  # fmt: skip
    flat = Tariff.objects.create(
        organisation=utility, code="RES-1", name="Residential prepaid", currency="ZAR",
        price_per_kwh=Decimal("2.4500"), fixed_charge_monthly=Decimal("35.00"),
        tax_percent=Decimal("15.00"), debt_recovery_percent=Decimal("20.00"),
    )  # fmt: skip
    lifeline = Tariff.objects.create(
        organisation=utility, code="LIFE-1", name="Lifeline blocks", currency="ZAR",
        kind=TariffKind.BLOCK, tax_percent=Decimal("15.00"),
    )  # fmt: skip
    TariffBlock.objects.create(
        tariff=lifeline, up_to_kwh=Decimal("50"), price_per_kwh=Decimal("1.10")
    )
    TariffBlock.objects.create(tariff=lifeline, up_to_kwh=None, price_per_kwh=Decimal("2.60"))
    now = timezone.now()
    for code, org in demo.regions.items():
        clerk = demo.users[f"{code}-clerk"]
        station = VendingStation.objects.create(
            organisation=org, code=f"{code.upper()}-OFFICE", name=f"{org.name} office",
            location=f"{org.name} customer service counter",
        )  # fmt: skip
        station.clerks.add(clerk)
        accounts = []
        meters = Meter.objects.filter(organisation=org).order_by("serial")
        for i, meter in enumerate(meters[:ACCOUNTS_PER_REGION]):
            account = PrepaidAccount(
                customer=Customer.objects.get(service_point=meter.service_point), meter=meter,
                tariff=lifeline if i % 3 == 2 else flat, sgc=DEMO_SGC, krn=1, ti=1,
                meter_number=demo_meter_number(meter.serial), organisation=org,
            )  # fmt: skip
            account.full_clean()  # a valid STS meter number, the customer at the meter's point
            account.save()
            accounts.append(account)
        PrepaidAccount.objects.filter(pk=accounts[1].pk).update(debt_balance=Decimal("80.00"))
        # The region's demo customer login (meters/demo.py) signs in to the portal as the
        # customer of the first prepaid account: usage, balance and a purchase to show.
        Customer.objects.filter(pk=accounts[0].customer_id).update(
            portal_user=demo.users[f"{code}-customer"]
        )
        accounts[1].refresh_from_db()
        earlier = now - timedelta(days=3)
        shift = actions.open_shift(station, acting_user=clerk, opening_float=100, now=earlier)
        for n, (account, amount) in enumerate(zip(accounts, PAST_SALES, strict=False)):
            actions.sell(
                account, amount, acting_user=clerk, shift=shift,
                payment_reference=f"demo-cash-{n + 1}", now=earlier + timedelta(minutes=10 * n),
            )  # fmt: skip
        actions.close_shift(
            shift, cash_counted=100 + sum(PAST_SALES), acting_user=clerk,
            note="demo: counted at the end of the day", now=earlier + timedelta(hours=8),
        )  # fmt: skip
        actions.open_shift(station, acting_user=clerk, opening_float=100, now=now)
