"""Buying a token in the portal: the sandbox provider, Stripe Checkout against a loopback
server speaking its API, webhook signatures, and exactly one token per paid payment."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client

from portal.models import Payment, PaymentState
from tests.meters.test_pages import client_for
from tests.portal import stripe_fake
from tests.vending.conftest import make_vending
from vending.models import Sale

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(world, settings, tmp_path):
    vend = make_vending(world)
    settings.AMI_PORTAL_PAYER = "paygate-a"  # region A's payment integration identity
    settings.AMI_SMS_URL = f"file://{tmp_path}/sms.jsonl"
    customer = world.grid_a.customers[0]
    customer.phone = "+27821234567"
    customer.save()
    return vend, tmp_path / "sms.jsonl"


def buy(client, vend, amount="50"):
    return client.post("/portal/pay/", {"account": vend.account_a.pk, "amount": amount})


def test_sandbox_pay_issues_one_token_shown_and_sent(
    world, shop, django_capture_on_commit_callbacks
):
    vend, sms_file = shop
    client = client_for(world.customer)
    response = buy(client, vend)
    payment = Payment.objects.get()
    assert response["Location"] == f"/portal/pay/{payment.reference}/sandbox/"
    assert payment.state == PaymentState.PENDING and payment.amount == Decimal("50.00")
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(response["Location"], {"action": "pay"})
    payment.refresh_from_db()
    assert (
        payment.state == PaymentState.PAID
        and payment.sale.idempotency_key == f"portal-{payment.reference}"
    )
    token = payment.sale.credit_token.grouped
    page = client.get(done["Location"]).content.decode()
    email = world.grid_a.customers[0].email
    assert token in page and f"by SMS to +27821234567 and by e-mail to {email}" in page
    sms = [json.loads(line) for line in sms_file.read_text().splitlines()]
    assert sms == [{"to": "+27821234567", "text": sms[0]["text"]}] and token in sms[0]["text"]
    (message,) = mail.outbox
    assert token in message.body and message.to == [world.grid_a.customers[0].email]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(response["Location"], {"action": "pay"})  # pressed again, second tab...
    assert Sale.objects.filter(account=vend.account_a).count() == 1 and len(mail.outbox) == 1


def test_a_paid_page_promises_no_sms_without_a_phone(world, shop):
    """The demo customer has no phone: the page said "we also sent it by SMS" all the same."""
    vend, _ = shop
    customer = world.grid_a.customers[0]
    customer.phone = ""
    customer.save()
    client = client_for(world.customer)
    response = buy(client, vend)
    done = client.post(response["Location"], {"action": "pay"})
    page = client.get(done["Location"]).content.decode()
    assert "SMS" not in page and f"We also sent it by e-mail to {customer.email}." in page
    customer.email = ""
    customer.save()
    world.customer.email = ""
    world.customer.save()
    page = client.get(done["Location"]).content.decode()
    assert "We also sent it" not in page and "no phone number or e-mail address" in page


def test_sandbox_decline_issues_nothing(world, shop):
    vend, _ = shop
    client = client_for(world.customer)
    response = buy(client, vend)
    client.post(response["Location"], {"action": "decline"})
    payment = Payment.objects.get()
    assert payment.state == PaymentState.FAILED and payment.sale is None
    assert not Sale.objects.filter(account=vend.account_a).exists()
    assert "did not go through" in client.get(f"/portal/pay/{payment.reference}/").content.decode()


def test_bad_input_and_another_customers_payment(world, shop):
    vend, _ = shop
    client = client_for(world.customer)
    for amount in ("abc", "0", "-5", "100000", "NaN"):
        answer = buy(client, vend, amount)
        assert answer.status_code == 400, amount
        said = answer.content.decode()
        assert "Enter the amount as a number" in said or "Enter an amount from 1 to" in said
        # a screen reader hears the error with the field it is about
        assert 'id="pay-error"' in said
        assert 'aria-invalid="true" aria-describedby="pay-error"' in said
    assert 'aria-describedby="pay-error"' not in client.get("/portal/pay/").content.decode()
    foreign = client.post("/portal/pay/", {"account": vend.account_a2.pk, "amount": "10"})
    assert (
        foreign.status_code == 400
        and "Choose one of your prepaid meters" in foreign.content.decode()
    )
    assert not Payment.objects.filter(state=PaymentState.PENDING).exists()
    response = buy(client, vend)
    payment = Payment.objects.get(state=PaymentState.PENDING)
    neighbour = client_for(world.operator_a)  # not a customer at all
    assert neighbour.get(f"/portal/pay/{payment.reference}/").status_code == 403
    other = make_customer_login(world)
    for url in (f"/portal/pay/{payment.reference}/", response["Location"]):
        assert other.get(url).status_code == 404
        assert other.post(url, {"action": "pay"}).status_code == 404
    payment.refresh_from_db()
    assert payment.state == PaymentState.PENDING


def make_customer_login(world) -> Client:
    from accounts import roles
    from tests.factories import make_user

    user = make_user("customer-a2", None, roles.CUSTOMER)
    neighbour = world.grid_a.customers[1]
    neighbour.portal_user = user
    neighbour.save()
    return client_for(user)


def test_without_a_payment_identity_buying_says_so(world, shop, settings):
    vend, _ = shop
    settings.AMI_PORTAL_PAYER = ""
    answer = buy(client_for(world.customer), vend)
    assert answer.status_code == 400 and "not set up" in answer.content.decode()
    assert not Payment.objects.exists()


@pytest.fixture
def stripe(settings, shop):
    with stripe_fake.FakeStripe() as fake:
        settings.AMI_PORTAL_PAYMENT_PROVIDER = "stripe"
        settings.AMI_STRIPE_API = fake.url
        settings.AMI_STRIPE_SECRET_KEY = stripe_fake.SECRET_KEY
        settings.AMI_STRIPE_WEBHOOK_SECRET = stripe_fake.WEBHOOK_SECRET
        yield fake


def webhook(body: bytes, header: str):
    return Client().post(
        "/portal/pay/webhook/stripe/", body, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )  # fmt: skip


def test_stripe_checkout_then_a_signed_webhook_issues_exactly_one_token(world, shop, stripe):
    vend, _ = shop
    client = client_for(world.customer)
    response = buy(client, vend, "49.50")
    payment = Payment.objects.get()
    (sent,) = stripe.requests
    assert sent["headers"]["Idempotency-Key"] == f"portal-{payment.reference}"
    assert sent["form"]["line_items[0][price_data][unit_amount]"] == "4950"
    assert sent["form"]["line_items[0][price_data][currency]"] == "zar"
    assert sent["form"]["client_reference_id"] == str(payment.reference)
    assert sent["form"]["success_url"].endswith(f"/portal/pay/{payment.reference}/")
    assert response["Location"] == stripe.sessions[payment.provider_ref]["url"]
    assert (
        "Waiting for the payment provider"
        in client.get(f"/portal/pay/{payment.reference}/").content.decode()
    )
    body, header = stripe.event(payment.provider_ref, "checkout.session.completed")
    assert webhook(body, header).status_code == 200
    assert webhook(body, header).status_code == 200  # Stripe retries: no second token
    payment.refresh_from_db()
    assert payment.state == PaymentState.PAID
    assert Sale.objects.filter(account=vend.account_a).count() == 1
    assert payment.sale.amount_paid == Decimal("49.50")
    assert payment.sale.payment_reference == f"stripe:{payment.provider_ref}"
    page = client.get(f"/portal/pay/{payment.reference}/").content.decode()
    assert payment.sale.credit_token.grouped in page


def test_stripe_webhooks_that_do_not_verify_or_do_not_match_issue_nothing(world, shop, stripe):
    import time

    vend, _ = shop
    client = client_for(world.customer)
    buy(client, vend, "20")
    payment = Payment.objects.get()
    ref = payment.provider_ref
    body, _ = stripe.event(ref, "checkout.session.completed")
    for header in (
        stripe.event(ref, "checkout.session.completed", secret="whsec_wrong")[1],
        stripe.event(ref, "checkout.session.completed", at=int(time.time()) - 3600)[1],
        "t=abc,v1=00", "", "v1=" + "0" * 64,
    ):  # fmt: skip
        assert webhook(body, header).status_code == 400, header
    assert webhook(b"not json", stripe.event(ref, "x")[1]).status_code == 400
    payment.refresh_from_db()
    assert payment.state == PaymentState.PENDING and not Sale.objects.exists()
    # Signed, but for another amount: failed, no token.
    body, header = stripe.event(ref, "checkout.session.completed", amount=1)
    assert webhook(body, header).status_code == 200
    payment.refresh_from_db()
    assert payment.state == PaymentState.FAILED and "no token issued" in payment.detail
    assert not Sale.objects.exists()
    # A later, correct confirmation does not revive a failed payment.
    body, header = stripe.event(ref, "checkout.session.completed")
    webhook(body, header)
    assert not Sale.objects.exists()


def test_stripe_expired_session_fails_and_an_unpaid_completion_waits(world, shop, stripe):
    vend, _ = shop
    client = client_for(world.customer)
    buy(client, vend, "20")
    payment = Payment.objects.get()
    body, header = stripe.event(payment.provider_ref, "checkout.session.completed", paid=False)
    assert webhook(body, header).status_code == 200  # e.g. a bank transfer still to come
    payment.refresh_from_db()
    assert payment.state == PaymentState.PENDING
    body, header = stripe.event(payment.provider_ref, "checkout.session.expired", paid=False)
    webhook(body, header)
    payment.refresh_from_db()
    assert payment.state == PaymentState.FAILED and not Sale.objects.exists()


def test_stripe_refusing_the_checkout_is_a_clear_error(world, shop, stripe, settings):
    vend, _ = shop
    settings.AMI_STRIPE_SECRET_KEY = "sk_test_wrong"
    answer = buy(client_for(world.customer), vend)
    assert answer.status_code == 400 and "refused the payment (401)" in answer.content.decode()
    assert Payment.objects.get().state == PaymentState.FAILED
    settings.AMI_STRIPE_API = "http://127.0.0.1:9"  # nothing listens
    settings.AMI_STRIPE_SECRET_KEY = stripe_fake.SECRET_KEY
    answer = buy(client_for(world.customer), vend)
    assert "could not be reached" in answer.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_confirmations_racing_issue_one_token(world, shop):
    """The webhook and the customer's second tab at the same moment: one sale."""
    import threading

    from django.db import connection

    from portal import payments
    from portal.payments.base import Outcome, minor_units

    vend, _ = shop
    buy(client_for(world.customer), vend, "30")
    payment = Payment.objects.get()
    outcome = Outcome(payment.provider_ref, True, True, minor_units(payment.amount), "ZAR")
    start, results = threading.Barrier(4), []

    def confirm():
        start.wait()
        try:
            results.append(payments.settle("sandbox", outcome).state)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [PaymentState.PAID] * 4
    assert Sale.objects.filter(account=vend.account_a).count() == 1
