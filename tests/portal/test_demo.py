"""The portal's demo (portal/demo.py): each customer login has a year of usage from the
simulated meters' own model, issued bills of actual reads, planned work above the home and
a working sandbox top-up as `make run` configures it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from amisite.launcher import DEMO_PORTAL_PAYER
from collection.simulators import model as sim
from meters.demo import DEMO_LOGINS, load_demo
from meters.models import Customer, Meter
from meters.store import DailyEnergy
from meters.store.days import day_bounds, local_zone
from portal import demo as portal_demo
from portal.customers import month_start
from portal.models import Bill, Payment, PaymentState, PlannedOutage
from vending.models import PrepaidAccount

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def signed_in(login) -> Client:
    client = Client()
    assert client.post("/login/", {"username": login.username, "password": login.password})[
        "Location"
    ] in ("/", "/portal/")
    return client


def test_every_demo_customer_has_a_year_of_usage_bills_planned_work_and_top_up(
    settings, django_capture_on_commit_callbacks
):
    assert DEMO_PORTAL_PAYER == portal_demo.DEMO_PAYER  # make run's AMI_PORTAL_PAYER
    settings.AMI_PORTAL_PAYER = DEMO_PORTAL_PAYER
    load_demo()
    today = timezone.localdate()
    last = f"{month_start(today, 1):%Y-%m}"
    customers = [login for login in DEMO_LOGINS if login.username.endswith("-customer")]
    assert len(customers) == 2
    for login in customers:
        customer = Customer.objects.select_related("service_point").get(
            portal_user__username=login.username
        )
        meter = Meter.objects.get(service_point=customer.service_point)
        days = DailyEnergy.objects.filter(  # imported energy (an interval or register profile)
            meter=meter, day__lt=today, channel__obis__in=("1-0:1.29.0*255", "1-0:1.8.0*255")
        )
        assert days.count() >= 365 and days.filter(day=today - timedelta(days=365)).exists()
        day = today - timedelta(days=200)
        start, end = day_bounds(day, local_zone())
        wh = sim.energy_register(meter.serial, 1, end) - sim.energy_register(meter.serial, 1, start)
        assert days.get(day=day).value == wh  # as the meter itself counts it
        client = signed_in(login)
        year = client.get("/portal/usage/?period=year").content.decode()
        assert "no readings" not in year
        issued = Bill.objects.filter(customer=customer)
        assert issued.count() >= 11
        assert [(b.month, b.content["notes"]) for b in issued.filter(estimated=True)] == []
        bill = issued.get(month=month_start(today, 1))
        period_end = day_bounds(month_start(today), local_zone())[0]
        period_start = day_bounds(month_start(today, 1), local_zone())[0]
        kwh = (
            Decimal(
                sim.energy_register(meter.serial, 1, period_end)
                - sim.energy_register(meter.serial, 1, period_start)
            )
            / 1000
        )
        assert bill.billed_kwh == kwh and bill.total > 0
        page = client.get(f"/portal/bills/{last}/").content.decode()
        assert "Nothing: every figure comes from actual meter reads." in page and "Issued" in page
        work = PlannedOutage.objects.get(node=customer.service_point.parent)
        assert work.starts_at > timezone.now()
        assert work.reason in client.get("/portal/outages/").content.decode()
        account = PrepaidAccount.objects.filter(customer=customer).first()
        checkout = client.post("/portal/pay/", {"account": account.pk, "amount": "40"})
        assert checkout.status_code == 302, checkout.content.decode()[:500]
        with django_capture_on_commit_callbacks(execute=True):
            done = client.post(checkout["Location"], {"action": "pay"})
        payment = Payment.objects.get(customer=customer)
        assert payment.state == PaymentState.PAID, payment.detail
        assert payment.sale.credit_token.grouped in client.get(done["Location"]).content.decode()
