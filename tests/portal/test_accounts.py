"""Portal accounts: activation (bill code or last payment), e-mail confirmation, password
change and reset by e-mail, the optional second factor, 30-day sessions, counted tries."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts import roles, two_factor
from accounts.models import User
from portal import activation
from portal.models import Attempt, PortalLogin
from tests.meters.test_pages import client_for
from tests.vending.conftest import make_vending
from vending import actions

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-Customer-pass-42"


def this_month() -> str:
    return timezone.localdate().strftime("%Y-%m")


def link_in(message) -> str:
    return re.search(r"http://testserver(\S+)", message.body).group(1)


def activate(web: Client, customer, **proof) -> object:
    proof = proof or {
        "account_number": customer.account_number,
        "bill_code": activation.bill_code(customer, this_month()),
    }
    return web.post("/portal/activate/", proof)


def details(web: Client, username="neighbour", email="me@home.example") -> object:
    return web.post(
        "/portal/activate/details/",
        {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD},
    )


def test_activation_with_the_bill_code_then_the_e_mail_is_confirmed(world):
    neighbour = world.grid_a.customers[1]
    web = Client()
    response = activate(web, neighbour)
    assert response.status_code == 302 and response["Location"] == "/portal/activate/details/"
    page = web.get("/portal/activate/details/").content.decode()
    assert neighbour.account_number in page
    with pytest.raises(Exception):  # noqa: B017 - nothing made before the details are sent
        User.objects.get(username="neighbour")
    response = details(web)
    assert response.status_code == 302 and response["Location"] == "/portal/"
    user = User.objects.get(username="neighbour")
    neighbour.refresh_from_db()
    assert neighbour.portal_user == user and user.groups.filter(name=roles.CUSTOMER).exists()
    assert user.organisation is None  # customers: no organisation's scope
    assert neighbour.account_number in web.get("/portal/").content.decode()  # signed in
    login = PortalLogin.objects.get(user=user)
    assert login.activated_by == "bill code" and not login.email_verified
    (message,) = mail.outbox
    assert message.to == ["me@home.example"]
    link = link_in(message)
    other = Client()  # the link may open on another device, signed out
    page = other.get(link).content.decode()
    assert "Confirm my address" in page
    login.refresh_from_db()
    assert not login.email_verified  # a GET (a mail scanner) confirms nothing
    token = link.split("t=", 1)[1]
    from urllib.parse import unquote

    assert "is confirmed" in other.post(link, {"t": unquote(token)}).content.decode()
    login.refresh_from_db()
    assert login.email_verified
    # The same step again is refused: one login per customer.
    again = Client()
    response = activate(again, neighbour)
    assert response.status_code == 200 and "has a login already" in response.content.decode()


def test_last_months_bill_works_an_old_one_and_a_wrong_code_do_not(world):
    neighbour = world.grid_a.customers[1]
    today = timezone.localdate()
    last = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert activation.by_bill(neighbour.account_number, activation.bill_code(neighbour, last))
    old = (today.replace(day=1) - timedelta(days=100)).strftime("%Y-%m")
    assert (
        activation.by_bill(neighbour.account_number, activation.bill_code(neighbour, old)) is None
    )
    code = activation.bill_code(neighbour, this_month())
    assert activation.by_bill(neighbour.account_number, code.lower().replace("-", " "))
    other = world.grid_a.customers[0]
    assert activation.by_bill(other.account_number, code) is None  # another customer's code
    assert activation.by_bill("NO-SUCH", code) is None


def test_activation_with_the_meter_and_the_last_payment(world):
    vend = make_vending(world)
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    actions.sell(vend.account_a2, Decimal("40"), acting_user=vend.clerk_a, shift=shift)
    actions.sell(vend.account_a2, Decimal("25.50"), acting_user=vend.clerk_a, shift=shift)
    serial = world.grid_a.meters[1].serial
    web = Client()
    refused = activate(web, None, meter_serial=serial, last_payment="40")  # not the last one
    assert refused.status_code == 200 and "could not find" in refused.content.decode()
    assert activate(web, None, meter_serial="x", last_payment="abc").status_code == 200
    response = activate(web, None, meter_serial=vend.account_a2.meter_number, last_payment="25,50")
    assert response["Location"] == "/portal/activate/details/"
    details(web, "prepaid-neighbour")
    assert PortalLogin.objects.get(user__username="prepaid-neighbour").activated_by == "payment"


def test_tries_are_counted_per_account_and_a_blocked_door_stays_shut(world):
    neighbour = world.grid_a.customers[1]
    web = Client()
    for _ in range(5):
        wrong = {"account_number": neighbour.account_number, "bill_code": "AAAA-AAAA"}
        assert activate(web, neighbour, **wrong).status_code == 200
    assert (
        Attempt.objects.filter(key=neighbour.account_number.lower(), succeeded=False).count() == 5
    )
    blocked = activate(web, neighbour)  # the right code, too late
    assert blocked.status_code == 429 and "Too many tries" in blocked.content.decode()
    assert not User.objects.filter(customer=neighbour).exists()
    # Another account from the same address still gets its tries (the address limit is 20).
    b = world.grid_b.customers[0]
    assert activate(Client(), b)["Location"] == "/portal/activate/details/"


def test_the_details_step_needs_the_first_and_a_valid_password(world):
    web = Client()
    page = web.get("/portal/activate/details/").content.decode()
    assert "Start with your account" in page
    assert details(web).status_code == 200 and not User.objects.filter(username="neighbour")
    activate(web, world.grid_a.customers[1])
    response = web.post(
        "/portal/activate/details/",
        {"username": "neighbour", "email": "x@y.example", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200 and not User.objects.filter(username="neighbour")
    taken = details(web, username="operator-a")
    assert "taken" in taken.content.decode()


def test_password_reset_goes_only_to_a_confirmed_address_and_works_once(world):
    web = Client()
    activate(web, world.grid_a.customers[1])
    details(web, email="me@home.example")
    mail.outbox.clear()
    anonymous = Client()
    answer = anonymous.post("/portal/account/reset/", {"email": "me@home.example"})
    assert "on its way" in answer.content.decode() and not mail.outbox  # not confirmed yet
    PortalLogin.objects.update(email_verified_at=timezone.now())
    answer = anonymous.post("/portal/account/reset/", {"email": "ME@home.example"})
    (message,) = mail.outbox
    link = link_in(message)
    assert "Set a new password" in anonymous.get(link).content.decode()
    query = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))
    new = "another-Long-pass-77"
    done = anonymous.post(
        "/portal/account/reset/confirm/", {**query, "password1": new, "password2": new}
    )
    assert "Your password is changed" in done.content.decode()
    assert not web.get("/portal/").status_code == 200  # the old session ended
    assert "not valid" in anonymous.get(link).content.decode()  # used: no second time
    signed = Client()
    assert signed.post("/login/", {"username": "neighbour", "password": new}).status_code == 302
    assert signed.get("/portal/").status_code == 200
    assert "not valid" in anonymous.get("/portal/account/reset/confirm/?u=x&t=y").content.decode()


def test_second_factor_is_optional_and_asked_once_enrolled(world):
    client = client_for(world.customer)
    page = client.get("/portal/account/two-factor/").content.decode()
    signed = re.search(r'name="secret" value="([^"]+)"', page).group(1)
    secret_hex = __import__("django.core.signing", fromlist=["loads"]).loads(
        signed, salt=f"ami-portal-enrol:{world.customer.pk}"
    )
    response = client.post(
        "/portal/account/two-factor/", {"secret": signed, "code": two_factor.code_now(secret_hex)}
    )
    codes = re.findall(r"<code>([A-Z2-7-]{19})</code>", response.content.decode())
    assert len(codes) == 10
    web = Client()
    response = web.post("/login/", {"username": "customer-a", "password": "pw-customer-a"})
    portal = web.get("/portal/usage/")
    assert portal.status_code == 302 and portal["Location"].startswith(
        "/portal/account/two-factor/verify/"
    )
    assert web.get("/meters/")["Location"].startswith("/portal/account/two-factor/verify/")
    wrong = web.post("/portal/account/two-factor/verify/", {"code": "000000", "next": "/x/"})
    assert wrong.status_code == 200 and web.get("/portal/").status_code == 302
    right = web.post(
        "/portal/account/two-factor/verify/", {"code": codes[0], "next": "/portal/usage/"}
    )
    assert right["Location"] == "/portal/usage/" and web.get("/portal/usage/").status_code == 200
    # Off again, with a code.
    web.post("/portal/account/two-factor/", {"action": "off", "code": codes[1]})
    assert not two_factor.required(world.customer)


def test_keep_me_signed_in_gives_a_customer_30_days(world):
    web = Client()
    web.post("/login/", {"username": "customer-a", "password": "pw-customer-a", "remember": "1"})
    assert 30 * 24 * 3600 - 60 < web.session.get_expiry_age() <= 30 * 24 * 3600
    assert web.session[SESSION_KEY] == str(world.customer.pk)
    short = Client()
    short.post("/login/", {"username": "customer-a", "password": "pw-customer-a"})
    assert short.session.get_expiry_age() <= 14 * 24 * 3600  # the site's default


def test_change_of_address_sends_a_new_link_and_an_old_link_confirms_nothing(world):
    client = client_for(world.customer)
    client.post("/portal/account/", {"action": "email", "email": "first@home.example"})
    first = link_in(mail.outbox[-1]).split("t=", 1)[1]
    client.post("/portal/account/", {"action": "email", "email": "second@home.example"})
    from urllib.parse import unquote

    answer = Client().post("/portal/account/email/confirm/", {"t": unquote(first)})
    assert answer.status_code == 400
    login = PortalLogin.objects.get(user=world.customer)
    assert login.email == "second@home.example" and not login.email_verified
    page = client.get("/portal/account/").content.decode()
    assert "not confirmed yet" in page and "second@home.example" in page


def test_password_change_keeps_this_session(world):
    client = client_for(world.customer)
    new = "brand-New-pass-2026"
    response = client.post(
        "/portal/account/password/",
        {"old_password": "pw-customer-a", "new_password1": new, "new_password2": new},
    )
    assert response["Location"] == "/portal/account/"
    assert client.get("/portal/").status_code == 200
