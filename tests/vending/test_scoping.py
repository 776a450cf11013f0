"""Scoping: organisation for everyone, station for clerks; read-only users cannot write."""

from __future__ import annotations

from decimal import Decimal as D

from rest_framework.test import APIClient

from tests.vending.conftest import NOW, VK02_HEX
from vending import actions
from vending.models import Sale


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def a_sale(vend, clerk=None, station=None):
    clerk = clerk or vend.clerk_a
    shift = actions.open_shift(station or vend.station_a, acting_user=clerk)
    return actions.sell(vend.account_a, D("10"), acting_user=clerk, shift=shift, now=NOW)


def test_other_organisation_gets_404(vend):
    sale = a_sale(vend)
    for user in (vend.clerk_b, vend.world.operator_b):
        client = client_for(user)
        assert client.get(f"/api/vending/sales/{sale.pk}/").status_code == 404
        assert client.get(f"/api/vending/accounts/{vend.account_a.pk}/").status_code == 404
        assert client.get(f"/api/vending/sales/{sale.pk}/receipt.txt/").status_code == 404
        assert sale.pk not in [s["id"] for s in client.get("/api/vending/sales/").json()["results"]]
    assert (
        client_for(vend.clerk_b).post(f"/api/vending/sales/{sale.pk}/reprint/").status_code == 404
    )


def test_clerk_sees_only_their_station(vend):
    sale = a_sale(vend)
    other_clerk = client_for(vend.clerk_a2)  # same organisation, another station
    assert other_clerk.get(f"/api/vending/sales/{sale.pk}/").status_code == 404
    assert other_clerk.get("/api/vending/sales/").json()["count"] == 0
    assert client_for(vend.clerk_a).get("/api/vending/sales/").json()["count"] == 1
    receipt = client_for(vend.clerk_a).get(f"/api/vending/sales/{sale.pk}/receipt.pdf/")
    assert receipt.status_code == 200 and receipt["Content-Type"] == "application/pdf"
    # Supervisors and read-only roles see the organisation's sales.
    assert client_for(vend.world.admin_a).get("/api/vending/sales/").json()["count"] == 1
    assert client_for(vend.world.readonly_a).get("/api/vending/sales/").json()["count"] == 1


def test_readonly_users_get_403_on_writes(vend):
    sale = a_sale(vend)
    readonly = client_for(vend.world.readonly_a)
    writes = [
        ("/api/vending/sales/", {"account": vend.account_a.pk, "amount": "5.00"}),
        (f"/api/vending/sales/{sale.pk}/reverse/", {"reason": "x"}),
        ("/api/vending/shifts/", {"station": vend.station_a.pk}),
        ("/api/vending/tariffs/", {"organisation": vend.world.org_a.pk, "code": "T",
                                   "name": "T", "currency": "ZAR"}),
        ("/api/vending/keys/", {"organisation": vend.world.org_a.pk, "sgc": 1, "krn": 1,
                                "key": "1122334455667788"}),
    ]  # fmt: skip
    for url, body in writes:
        assert readonly.post(url, body, format="json").status_code == 403, url
    assert readonly.get(f"/api/vending/sales/{sale.pk}/").status_code == 200


def test_customer_and_anonymous_get_nothing(vend):
    assert client_for(vend.world.customer).get("/api/vending/sales/").status_code == 403
    assert APIClient().get("/api/vending/sales/").status_code in (401, 403)


def test_pages_are_scoped(vend, client):
    sale = a_sale(vend)
    client.force_login(vend.clerk_b)
    assert client.get(f"/vending/sales/{sale.reference}/").status_code == 404
    assert client.get(f"/vending/accounts/{vend.account_a.pk}/").status_code == 404
    assert client.get(f"/vending/sales/{sale.reference}/receipt.pdf").status_code == 404
    client.force_login(vend.clerk_a)
    page = client.get(f"/vending/sales/{sale.reference}/")
    assert page.status_code == 200 and sale.credit_token.grouped in page.content.decode()
    client.force_login(vend.world.admin_a)
    detail = client.get(f"/vending/accounts/{vend.account_a.pk}/").content.decode()
    assert "No AMI readings for this meter" in detail and sale.credit_token.grouped in detail
    for url in ("/vending/", "/vending/accounts/", "/vending/reports/"):
        body = client.get(url).content.decode()
        assert VK02_HEX not in body
    client.force_login(vend.world.customer)
    assert client.get("/vending/").status_code in (302, 403)


def test_counter_pages_sell_and_close(vend, client):
    client.force_login(vend.clerk_a)
    client.post("/vending/counter/open/", {"station": vend.station_a.pk, "opening_float": "0"})
    sold = client.post("/vending/counter/sell/", {"meter_number": vend.account_a.meter_number,
                                                  "amount": "10.00"})  # fmt: skip
    assert sold.status_code == 302 and "/vending/sales/" in sold["Location"]
    closed = client.post("/vending/counter/close/", {"cash_counted": "10.00"}, follow=True)
    assert "variance 0.00" in closed.content.decode()


def test_counter_keeps_what_the_clerk_typed_on_a_wrong_number(vend, client):
    """A wrong meter number or amount: the counter again, the entry kept, the error at the
    field, nothing sold (the clerk corrects one digit instead of typing the sale again)."""
    client.force_login(vend.clerk_a)
    client.post("/vending/counter/open/", {"station": vend.station_a.pk, "opening_float": "0"})
    wrong = client.post("/vending/counter/sell/", {"meter_number": "12345", "amount": "10.00"})
    body = wrong.content.decode()
    assert wrong.status_code == 200 and 'id="sell-form"' in body
    assert "No prepaid account has the meter number, MeterPAN or account number 12345" in body
    assert 'value="12345"' in body and 'value="10.00"' in body
    # Another region's account is no better than a typo, and says nothing more.
    other = client.post("/vending/counter/sell/", {"meter_number": vend.account_b.meter_number,
                                                   "amount": "10.00"})  # fmt: skip
    assert f"account number {vend.account_b.meter_number}." in other.content.decode()
    negative = client.post("/vending/counter/sell/", {"meter_number": vend.account_a.meter_number,
                                                      "amount": "-5"})  # fmt: skip
    body = negative.content.decode()
    assert "greater than or equal to 0.01" in body and vend.account_a.meter_number in body
    assert not Sale.objects.exists()
    client.post("/vending/counter/close/", {"cash_counted": "0"})
    closed = client.post("/vending/counter/sell/", {"meter_number": vend.account_a.meter_number,
                                                    "amount": "10.00"})  # fmt: skip
    assert "Not sold: open a shift at your station before selling" in closed.content.decode()
    assert not Sale.objects.exists()


def test_reports_are_scoped_and_download_as_csv(vend, client):
    a_sale(vend)
    client.force_login(vend.world.admin_a)
    period = "&from=2025-05-01&to=2025-05-31"  # the sale's month (reports are per period)
    csv_text = client.get(f"/vending/reports/?csv=by-station{period}").content.decode()
    assert csv_text.splitlines()[0].startswith("Day,Station")
    assert "STA" in csv_text
    client.force_login(vend.world.operator_b)
    assert "STA" not in client.get(f"/vending/reports/?csv=by-station{period}").content.decode()
    assert client.get("/vending/reports/?csv=debt").status_code == 200
