"""The vending API: payments (idempotent), counter sales, management tokens, keys hidden."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ActivityLog
from tests.vending.conftest import SGC, VK02_HEX
from vending.engine import decoder_key
from vending.models import Sale, Token, VendingKey
from vending.sts.tokens import decode_token

PAY = "/api/vending/payments/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def payment(vend, **extra):
    return {"meter_number": vend.account_a.meter_number, "amount": "100.00", "currency": "ZAR",
            "payment_reference": "BANK-1", **extra}  # fmt: skip


def test_payment_returns_a_decodable_token(vend):
    response = client_for(vend.integration_a).post(PAY, payment(vend), format="json",
                                             HTTP_IDEMPOTENCY_KEY="abc")  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    decoded = decode_token(body["token"]["digits"], decoder_key(vend.account_a))
    assert decoded.amount == D(body["energy_kwh"]) == D("50.0")
    assert decoded.tid == body["token"]["tid"]


def test_same_key_repeated_gives_one_sale(vend):
    client = client_for(vend.integration_a)
    answers = [client.post(PAY, payment(vend, idempotency_key="same"), format="json")
               for _ in range(5)]  # fmt: skip
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200]
    assert len({a.json()["token"]["digits"] for a in answers}) == 1
    assert answers[1]["Idempotent-Replayed"] == "true"
    assert Sale.objects.count() == 1 and Token.objects.count() == 1


def test_same_key_other_payload_is_a_conflict(vend):
    client = client_for(vend.integration_a)
    assert client.post(PAY, payment(vend, idempotency_key="k"), format="json").status_code == 201
    other = client.post(PAY, payment(vend, idempotency_key="k", amount="5.00"), format="json")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    assert Sale.objects.count() == 1


def test_failed_payment_leaves_nothing_and_keeps_the_key(vend):
    VendingKey.objects.all().delete()
    client = client_for(vend.integration_a)
    failed = client.post(PAY, payment(vend, idempotency_key="retry"), format="json")
    assert failed.status_code == 503
    assert "no vending key" in failed.json()["detail"]
    assert not Sale.objects.exists() and not Token.objects.exists()
    VendingKey.objects.create(organisation=vend.world.utility, sgc=SGC, krn=1, key=VK02_HEX)
    retried = client.post(PAY, payment(vend, idempotency_key="retry"), format="json")
    assert retried.status_code == 201


def test_payment_refusals(vend):
    client = client_for(vend.integration_a)
    assert client.post(PAY, payment(vend), format="json").status_code == 400  # no key
    wrong = client.post(PAY, payment(vend, currency="USD", idempotency_key="x"), format="json")
    assert wrong.status_code == 422 and "ZAR" in wrong.json()["detail"]
    other_org = payment(vend, meter_number=vend.account_b.meter_number, idempotency_key="y")
    assert client.post(PAY, other_org, format="json").status_code == 404
    assert (
        client_for(vend.world.readonly_a)
        .post(PAY, payment(vend, idempotency_key="z"), format="json")
        .status_code
        == 403
    )
    assert not Sale.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_key_fifty_times_at_once_gives_one_sale(world):
    from tests.vending.conftest import make_vending

    vend = make_vending(world)
    barrier = threading.Barrier(50)
    statuses, tokens, errors = [], [], []

    def post():
        try:
            client = client_for(vend.integration_a)
            barrier.wait(timeout=30)
            response = client.post(PAY, payment(vend), format="json", HTTP_IDEMPOTENCY_KEY="burst")
            statuses.append(response.status_code)
            tokens.append(response.json()["token"]["digits"])
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(statuses) == [200] * 49 + [201]
    assert len(set(tokens)) == 1
    assert Sale.objects.count() == 1 and Token.objects.count() == 1


def test_counter_sale_through_the_api(vend):
    client = client_for(vend.clerk_a)
    body = {"account": vend.account_a.pk, "amount": "20.00"}
    assert client.post("/api/vending/sales/", body, format="json").status_code == 422  # no shift
    opened = client.post("/api/vending/shifts/", {"station": vend.station_a.pk}, format="json")
    assert opened.status_code == 201, opened.content
    sold = client.post("/api/vending/sales/", body, format="json")
    assert sold.status_code == 201, sold.content
    assert sold.json()["station"] == "STA"
    closed = client.post(f"/api/vending/shifts/{opened.json()['id']}/close/",
                         {"cash_counted": "20.00"}, format="json")  # fmt: skip
    assert closed.status_code == 200 and closed.json()["variance"] == "0.00"


def test_reprint_gives_the_same_token_marked_reprint(vend):
    client = client_for(vend.clerk_a)
    client.post("/api/vending/shifts/", {"station": vend.station_a.pk}, format="json")
    sale = client.post("/api/vending/sales/", {"account": vend.account_a.pk, "amount": "20.00"},
                       format="json").json()  # fmt: skip
    reprint = client.post(f"/api/vending/sales/{sale['id']}/reprint/")
    assert reprint.status_code == 200
    assert reprint.json()["token"]["digits"] == sale["token"]["digits"]
    assert "REPRINT 1" in reprint.json()["receipt_text"]
    assert Token.objects.count() == 1


def test_reverse_needs_a_supervisor(vend):
    client = client_for(vend.clerk_a)
    client.post("/api/vending/shifts/", {"station": vend.station_a.pk}, format="json")
    sale = client.post("/api/vending/sales/", {"account": vend.account_a.pk, "amount": "20.00"},
                       format="json").json()  # fmt: skip
    url = f"/api/vending/sales/{sale['id']}/reverse/"
    assert client.post(url, {"reason": "oops"}, format="json").status_code == 403
    admin = client_for(vend.world.admin_a)
    # Whether the token was entered must be said; the refund is paid at an open drawer.
    unasked = admin.post(url, {"reason": "oops", "refund_shift": sale["shift"]}, format="json")
    assert unasked.status_code == 422 and "entered" in unasked.json()["detail"]
    body = {"reason": "oops", "token_entered": False, "refund_shift": sale["shift"]}
    reversed_ = admin.post(url, body, format="json")
    assert reversed_.status_code == 200 and reversed_.json()["status"] == "reversed"
    reversal = reversed_.json()["reversal"]
    assert reversal["reason"] == "oops" and reversal["refund_amount"] == "20.00"
    assert reversal["refund_shift"] == sale["shift"] and reversal["token_entered"] is False


def test_management_tokens_api_role_checks(vend):
    url = "/api/vending/management-tokens/"
    body = {"account": vend.account_a.pk, "purpose": "clear-credit", "reason": "meter swap"}
    assert client_for(vend.clerk_a).post(url, body, format="json").status_code == 403
    assert client_for(vend.world.readonly_a).post(url, body, format="json").status_code == 403
    created = client_for(vend.world.admin_a).post(url, body, format="json")
    assert created.status_code == 201, created.content
    digits = created.json()["tokens"][0]["digits"]
    decoded = decode_token(digits, decoder_key(vend.account_a))
    assert decoded.kind.value == "clear-credit" and decoded.register == 0xFFFF
    other = {**body, "account": vend.account_b.pk}
    assert client_for(vend.world.admin_a).post(url, other, format="json").status_code == 400
    assert ActivityLog.objects.filter(action="issue_management_token").count() == 1


def test_vending_keys_never_leave_the_server(vend):
    admin = client_for(vend.world.admin_a)
    created = admin.post("/api/vending/keys/", {"organisation": vend.world.org_a.pk, "sgc": 1,
                         "krn": 1, "key": "1122334455667788"}, format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    assert "key" not in created.json() and created.json()["key_set"] is True
    listing = admin.get("/api/vending/keys/").content.decode()
    assert "1122334455667788" not in listing
    # Neither in the activity log nor in a sale or payment answer.
    client_for(vend.integration_a).post(PAY, payment(vend, idempotency_key="q"), format="json")
    for text in [str(row.changes) + row.detail for row in ActivityLog.objects.all()]:
        assert "1122334455667788" not in text and VK02_HEX not in text
    sales = client_for(vend.world.admin_a).get("/api/vending/sales/").content.decode()
    assert VK02_HEX not in sales
    # Clerks cannot manage keys (nor tariffs, stations, accounts).
    assert client_for(vend.clerk_a).post(
        "/api/vending/keys/", {"organisation": vend.world.org_a.pk, "sgc": 2, "krn": 1,
                               "key": "1122334455667788"}, format="json"
    ).status_code == 403  # fmt: skip


def test_accounts_api_validates_the_meter_number(vend):
    admin = client_for(vend.world.admin_a)
    url = f"/api/vending/accounts/{vend.account_a.pk}/"
    bad = admin.patch(url, {"meter_number": "00000000019"}, format="json")
    assert bad.status_code == 400 and "Luhn" in str(bad.json())
    ok = admin.post(f"{url}adjust-debt/", {"change": "12.50", "reason": "arrears"}, format="json")
    assert ok.status_code == 200 and ok.json()["debt_balance"] == "12.50"
    assert (
        client_for(vend.clerk_a)
        .post(f"{url}adjust-debt/", {"change": "1.00", "reason": "x"}, format="json")
        .status_code
        == 403
    )
