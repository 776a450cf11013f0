"""Who may sell, where, and who sees it (issue 12, item 6).

A counter sale needs the clerk's open shift at a counter station; a third-party payment
needs a payment system's own identity bound to an integration station. A clerk with no
station and no shift sells nothing through either door, and whoever sold sees the sale
(list and detail, API and page), even after leaving the station.
"""

from __future__ import annotations

import io
from decimal import Decimal as D

from django.core.management import call_command
from rest_framework.test import APIClient

from accounts import roles
from accounts.models import ActivityLog
from tests.factories import make_user
from tests.vending.conftest import NOW
from vending import actions
from vending.choices import SaleChannel, StationKind
from vending.models import Sale, VendingStation

PAY = "/api/vending/payments/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def payment(vend, key="k1", **extra):
    return {"meter_number": vend.account_a.meter_number, "amount": "100.00", "currency": "ZAR",
            "payment_reference": "BANK-1", "idempotency_key": key, **extra}  # fmt: skip


def test_clerk_without_station_or_shift_cannot_sell_through_payments(vend):
    loose = make_user("clerk-loose", vend.world.org_a, roles.VENDING_CLERK)
    answer = client_for(loose).post(PAY, payment(vend), format="json")
    assert answer.status_code == 403, answer.content
    assert "integration" in answer.json()["detail"]
    counter = client_for(loose).post(
        "/api/vending/sales/", {"account": vend.account_a.pk, "amount": "20.00"}, format="json"
    )
    assert counter.status_code == 422 and "shift" in counter.json()["detail"]
    assert not Sale.objects.exists()
    assert ActivityLog.objects.filter(action="pay", user=loose, outcome="denied").exists()


def test_clerk_of_a_counter_station_sells_only_in_a_shift(vend):
    # A counter station's clerk is no payment system either: the counter is the door.
    answer = client_for(vend.clerk_a).post(PAY, payment(vend), format="json")
    assert answer.status_code == 403
    assert not Sale.objects.exists()


def test_payment_system_sells_at_its_own_station_and_sees_the_sale(vend, client):
    paygate = vend.integration_a
    answer = client_for(paygate).post(PAY, payment(vend), format="json")
    assert answer.status_code == 201, answer.content
    sale = Sale.objects.get()
    assert sale.station == vend.pay_station_a and sale.channel == SaleChannel.API
    assert answer.json()["station"] == vend.pay_station_a.code
    api = client_for(paygate)
    assert [row["id"] for row in api.get("/api/vending/sales/").json()["results"]] == [sale.pk]
    assert api.get(f"/api/vending/sales/{sale.pk}/").status_code == 200
    client.force_login(paygate)
    assert client.get(f"/vending/sales/{sale.reference}/").status_code == 200
    listing = client.get("/vending/sales/")
    assert listing.status_code == 200 and str(sale.reference)[:8] in listing.content.decode()
    # The counter clerks of the organisation do not see the payment system's sales.
    assert client_for(vend.clerk_a).get("/api/vending/sales/").json()["count"] == 0


def test_no_shift_at_an_integration_station(vend):
    body = {"station": vend.pay_station_a.pk}
    # The payment system's role has no shifts at all; nobody opens one at its station.
    assert client_for(vend.integration_a).post("/api/vending/shifts/", body).status_code == 403
    answer = client_for(vend.world.admin_a).post("/api/vending/shifts/", body, format="json")
    assert answer.status_code == 422 and "payment system" in answer.json()["detail"]


def test_seller_still_sees_the_sale_after_leaving_the_station(vend, client):
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    sale = actions.sell(vend.account_a, D("10"), acting_user=vend.clerk_a, shift=shift, now=NOW)
    actions.close_shift(shift, cash_counted=D("10"), acting_user=vend.clerk_a)
    vend.station_a.clerks.remove(vend.clerk_a)
    api = client_for(vend.clerk_a)
    assert api.get(f"/api/vending/sales/{sale.pk}/").status_code == 200
    assert api.get("/api/vending/sales/").json()["count"] == 1
    assert api.get(f"/api/vending/shifts/{shift.pk}/").status_code == 200
    client.force_login(vend.clerk_a)
    assert client.get(f"/vending/sales/{sale.reference}/").status_code == 200
    # Another clerk of that station sees it through the station; no duplicate rows.
    vend.station_a.clerks.add(vend.clerk_a2, vend.clerk_a)
    assert client_for(vend.clerk_a2).get("/api/vending/sales/").json()["count"] == 1
    assert client_for(vend.clerk_a).get("/api/vending/sales/").json()["count"] == 1


def test_a_clerk_removed_from_the_station_cannot_sell_in_the_open_shift(vend):
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    vend.station_a.clerks.remove(vend.clerk_a)
    answer = client_for(vend.clerk_a).post(
        "/api/vending/sales/", {"account": vend.account_a.pk, "amount": "20.00"}, format="json"
    )
    assert answer.status_code == 422, answer.content
    assert shift.sales.count() == 0


def test_counter_station_kind_by_default_and_integration_stations_listed(vend):
    assert VendingStation.objects.get(pk=vend.station_a.pk).kind == StationKind.COUNTER
    assert vend.pay_station_a.kind == StationKind.INTEGRATION


def test_add_payment_system_command_gives_a_working_identity(vend):
    out = io.StringIO()
    call_command("add_payment_system", "north", "NORTH-BANK", "North bank", stdout=out)
    words = out.getvalue().split()
    username, password = words[words.index("identity") + 1], words[words.index("password") + 1]
    client = APIClient()
    token = client.post("/api/token/", {"username": username, "password": password})
    assert token.status_code in (200, 201), token.content
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    answer = client.post(PAY, payment(vend, key="bank-1"), format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["station"] == "NORTH-BANK"
    assert client.get("/api/vending/sales/").json()["count"] == 1
