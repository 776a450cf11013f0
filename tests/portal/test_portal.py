"""The customer portal: a customer sees only their own supply, usage and purchases.

Scoping (customer A never reaches customer B, even by a sale's reference in the URL), the
figures (the CSV equals the store's daily rollups), the doors (staff get a plain 403 page,
anonymous visitors the sign-in, customers never the staff pages) and the outage notice.
Pages at 1280 and 390 px in Chromium: tests/pages/test_every_page.py (portal cases).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import path
from django.utils import timezone

from amisite.urls import urlpatterns as root_patterns
from portal.customers import month_start
from tests.factories import make_user
from tests.meters.alarms.helpers import make_rule, raise_alarm
from tests.meters.test_pages import client_for
from tests.pages.test_error_pages import boom
from tests.portal.data import store_days
from tests.vending.conftest import make_vending
from vending import actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold(world):
    """Vending of tests/vending (accounts of A's customers 0 and 1, B's 0), one sale each."""
    vend = make_vending(world)
    shift_a = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    shift_b = actions.open_shift(vend.station_b, acting_user=vend.clerk_b)
    sales = {
        "mine": actions.sell(
            vend.account_a, Decimal("50"), acting_user=vend.clerk_a, shift=shift_a
        ),
        "neighbour": actions.sell(
            vend.account_a2, Decimal("60"), acting_user=vend.clerk_a, shift=shift_a
        ),
        "south": actions.sell(
            vend.account_b, Decimal("70"), acting_user=vend.clerk_b, shift=shift_b
        ),
    }
    return vend, sales


def test_home_shows_own_supply_usage_and_balance_only(world, sold):
    mine, other = world.grid_a.customers
    rows = store_days(world.grid_a.meters[0])
    store_days(world.grid_a.meters[1], wh=99_000)  # the neighbour's, never counted
    html = client_for(world.customer).get("/portal/").content.decode()
    assert mine.account_number in html and world.grid_a.meters[0].serial in html
    assert sold[0].account_a.meter_number in html
    for foreign in (other, *world.grid_b.customers):
        assert foreign.account_number not in html and foreign.name not in html
    for meter in (world.grid_a.meters[1], *world.grid_b.meters):
        assert meter.serial not in html
    assert sold[0].account_a2.meter_number not in html
    today = timezone.localdate()
    this_month = sum(v for d, v in rows.items() if d >= month_start(today)) / Decimal(1000)
    assert f"{this_month:.1f} kWh" in html
    last = month_start(today, 1)
    last_month = sum(v for d, v in rows.items() if last <= d < month_start(today)) / Decimal(1000)
    assert f"{last_month:.1f} kWh" in html
    assert "Power outage" not in html


def test_purchases_are_own_and_a_foreign_reference_is_a_404(world, sold):
    _vend, sales = sold
    client = client_for(world.customer)
    html = client.get("/portal/purchases/").content.decode()
    mine = sales["mine"]
    assert mine.credit_token.grouped in html and str(mine.reference) in html
    for other in (sales["neighbour"], sales["south"]):
        assert other.credit_token.grouped not in html and str(other.reference) not in html
    page = client.get(f"/portal/purchases/{mine.reference}/")
    assert page.status_code == 200 and mine.credit_token.grouped in page.content.decode()
    pdf = client.get(f"/portal/purchases/{mine.reference}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    for other in (sales["neighbour"], sales["south"]):
        detail = f"/portal/purchases/{other.reference}/"
        for url in (detail, detail + "receipt.pdf"):
            assert client.get(url).status_code == 404, url


def test_customer_b_sees_b_not_a(world, sold):
    """The same pages for another customer (B's first): the mirror image."""
    customer_b = make_user("customer-b", None, "customer")
    b = world.grid_b.customers[0]
    b.portal_user = customer_b
    b.save()
    client = client_for(customer_b)
    html = (
        client.get("/portal/").content.decode() + client.get("/portal/purchases/").content.decode()
    )
    assert b.account_number in html and sold[1]["south"].credit_token.grouped in html
    assert world.grid_a.customers[0].account_number not in html
    assert sold[1]["mine"].credit_token.grouped not in html
    assert client.get(f"/portal/purchases/{sold[1]['mine'].reference}/").status_code == 404


def test_usage_csv_equals_the_store(world):
    rows = store_days(world.grid_a.meters[0], days=400)
    store_days(world.grid_a.meters[1], wh=99_000)
    client = client_for(world.customer)
    today = timezone.localdate()
    daily = list(csv.reader(io.StringIO(client.get("/portal/usage.csv").content.decode())))
    assert daily[0] == ["day", "kwh"] and len(daily) == 31
    days = [today - timedelta(days=i) for i in range(29, -1, -1)]
    expected = [[day.isoformat(), f"{rows[day] / Decimal(1000):.3f}"] for day in days]
    assert daily[1:] == expected
    response = client.get("/portal/usage.csv?period=monthly")
    monthly = list(csv.reader(io.StringIO(response.content.decode())))
    assert monthly[0] == ["month", "kwh"] and len(monthly) == 13
    for label, value in monthly[1:]:
        total = sum(v for d, v in rows.items() if d.strftime("%Y-%m") == label)
        assert Decimal(value) == Decimal(total) / 1000, label
    assert client.get("/portal/usage.csv?period=hourly").status_code == 404


def test_usage_page_draws_the_months_chart_with_the_figures(world):
    rows = store_days(world.grid_a.meters[0])
    html = client_for(world.customer).get("/portal/usage/").content.decode()
    assert html.count('<svg class="chart"') == 1 and 'role="img"' in html
    today = timezone.localdate()
    assert f"{today.isoformat()}: {rows[today] / Decimal(1000):.1f} kWh" in html
    assert "/portal/usage.csv?period=monthly" in html and "?period=year&amp;date=" in html


def test_usage_without_readings_says_so(world):
    html = client_for(world.customer).get("/portal/usage/").content.decode()
    assert "No readings in this period yet." in html
    assert "no readings yet" in client_for(world.customer).get("/portal/").content.decode()


def test_staff_get_a_plain_403_page_and_anonymous_the_sign_in(world, sold):
    for user in (world.operator_a, world.admin_a, world.superuser, sold[0].clerk_a):
        for url in ("/portal/", "/portal/usage/", "/portal/usage.csv", "/portal/purchases/",
                    f"/portal/purchases/{sold[1]['mine'].reference}/"):  # fmt: skip
            response = client_for(user).get(url)
            assert response.status_code == 403, (user, url)
        assert "not linked to a customer" in response.content.decode()
    response = Client().get("/portal/usage/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_customer_signing_in_lands_on_the_portal(world):
    web = Client()
    response = web.post("/login/", {"username": "customer-a", "password": "pw-customer-a"})
    assert web.get(response["Location"])["Location"] == "/portal/"
    assert web.get("/portal/").status_code == 200


STAFF_ADDRESSES = (
    "/meters/", "/grid/", "/map/", "/alarms/", "/vending/", "/admin/", "/admin/login/",
    "/api/meters/", "/api/", "/api/docs/", "/api/schema/", "/reports/query/", "/runs/",
    "/account/tokens/", "/account/password/", "/account/two-factor/", "/activity/",
)  # fmt: skip


def test_a_customer_never_reaches_staff_pages_admin_or_api(world):
    client = client_for(world.customer)
    for url in STAFF_ADDRESSES:
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        if url.startswith("/api/"):
            assert "portal" in response.json()["detail"], url
        else:
            html = response.content.decode()
            assert 'id="staff-only"' in html and 'class="mainnav"' not in html, url
    assert client.post("/account/tokens/", {"name": "x"}).status_code == 403
    assert client.get("/")["Location"] == "/portal/"


def test_a_customer_gets_no_api_token(world):
    from accounts.models import ApiToken
    from accounts.tokens import CustomerRefused, issue_token

    response = Client().post("/api/token/", {"username": "customer-a", "password": "pw-customer-a"})
    assert response.status_code == 403 and "portal" in response.json()["detail"]
    with pytest.raises(CustomerRefused):
        issue_token(world.customer)
    assert not ApiToken.objects.filter(user=world.customer).exists()
    # A token from before the rule (written directly) no longer opens the API.
    key = "k" * 43
    ApiToken.objects.create(
        user=world.customer, prefix=key[:8], key_hash=ApiToken.hash_key(key),
        auth_hash=world.customer.get_session_auth_hash(),
        expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    answer = Client().get("/api/meters/", HTTP_AUTHORIZATION=f"Token {key}")
    assert answer.status_code == 401 and "portal" in answer.json()["detail"]


def test_error_pages_show_a_customer_the_portal_bar_not_the_staff_menu(world):
    missing = client_for(world.customer).get("/portal/no-such-page/")
    html = missing.content.decode()
    assert missing.status_code == 404 and 'id="error-404"' in html
    assert "css/portal.css" in html and 'class="mainnav"' not in html
    assert 'href="/portal/usage/"' in html and "API tokens" not in html
    staff = client_for(world.operator_a).get("/no-such-page/").content.decode()
    assert 'class="mainnav"' in staff and "css/portal.css" not in staff


urlpatterns = [*root_patterns, path("portal/boom/", boom)]  # inside the customer's door


@pytest.mark.urls(__name__)
def test_a_server_error_shows_a_customer_no_staff_menu(world, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(world.customer)
    html = client.get("/portal/boom/").content.decode()
    assert 'id="error-500"' in html and "planted failure" not in html
    assert 'class="mainnav"' not in html and "API tokens" not in html


def test_purchases_are_paged_newest_first(world):
    vend = make_vending(world)
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    sold = [
        actions.sell(vend.account_a, Decimal(10 + i), acting_user=vend.clerk_a, shift=shift)
        for i in range(23)
    ]
    client = client_for(world.customer)
    first = client.get("/portal/purchases/").content.decode()
    assert "page 1 of 2" in first and 'href="?page=2"' in first
    assert first.count('class="card purchase"') == 20
    second = client.get("/portal/purchases/?page=2").content.decode()
    assert second.count('class="card purchase"') == 3 and "page 2 of 2" in second
    for sale in sold[:3]:  # the oldest three
        assert str(sale.reference) in second and str(sale.reference) not in first
    assert client.get("/portal/purchases/?page=99").status_code == 200  # the last page
    assert client.get("/portal/purchases/?page=x").status_code == 200  # the first


def test_outage_notice_at_home_and_nearby(world):
    make_rule(world.org_a)
    client = client_for(world.customer)
    raise_alarm(world.grid_a.meters[1])  # the neighbour on the same transformer
    html = client.get("/portal/").content.decode()
    assert "Power outage in your area" in html
    raise_alarm(world.grid_a.meters[0])
    html = client.get("/portal/").content.decode()
    assert "Power outage at your address" in html and "2 homes near you" in html


def test_an_outage_elsewhere_is_not_shown(world):
    make_rule(world.org_b)
    raise_alarm(world.grid_b.meters[0])
    assert "Power outage" not in client_for(world.customer).get("/portal/").content.decode()
