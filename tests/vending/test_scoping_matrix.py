"""Scoping of the vending endpoints the generated API matrix cannot drive (tests/api_matrix.py).

Shifts, sales and management orders are made only through `vending.actions` (no PUT, PATCH
or DELETE), so tests/accounts/test_api_matrix.py exempts their models and points here:
the other organisation gets 404 on every read and action, read-only users get 403 on
every write, and nothing changes.
"""

from __future__ import annotations

from decimal import Decimal as D

from rest_framework.test import APIClient

from tests.vending.conftest import NOW
from vending import actions
from vending.models import ManagementOrder, PrepaidAccount, Sale, Shift

SHIFTS = "/api/vending/shifts/"
SALES = "/api/vending/sales/"
ORDERS = "/api/vending/management-tokens/"
ACCOUNTS = "/api/vending/accounts/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def listed_ids(client, url) -> set[int]:
    response = client.get(url, {"page_size": 1000})
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_shifts_are_scoped(vend):
    world = vend.world
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    detail, close = f"{SHIFTS}{shift.pk}/", f"{SHIFTS}{shift.pk}/close/"
    # Organisation A: its clerk and its supervisor and analyst see the shift.
    for user in (vend.clerk_a, world.admin_a, world.readonly_a):
        client = client_for(user)
        assert client.get(detail).status_code == 200, user
        assert shift.pk in listed_ids(client, SHIFTS), user
    # Organisation B (clerk, supervisor, operator) and A's clerk of another station: 404.
    for user in (vend.clerk_b, world.admin_b, world.operator_b, vend.clerk_a2):
        client = client_for(user)
        assert client.get(detail).status_code == 404, user
        assert shift.pk not in listed_ids(client, SHIFTS), user
        closed = client.post(close, {"cash_counted": "0.00"}, format="json")
        assert closed.status_code in (403, 404), user
        if user.has_perm("vending.add_shift"):
            assert closed.status_code == 404, user
    # Opening a shift at organisation B's station from A is refused.
    refused = client_for(world.admin_a).post(SHIFTS, {"station": vend.station_b.pk}, format="json")
    assert refused.status_code == 400, refused.content
    # Read-only users cannot open or close shifts.
    readonly = client_for(world.readonly_a)
    assert readonly.post(SHIFTS, {"station": vend.station_a.pk}, format="json").status_code == 403
    assert readonly.post(close, {"cash_counted": "0.00"}, format="json").status_code == 403
    shift.refresh_from_db()
    assert shift.status == "open" and Shift.objects.count() == 1


def test_sale_actions_other_organisation_gets_404(vend):
    world = vend.world
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    sale = actions.sell(vend.account_a, D("10"), acting_user=vend.clerk_a, shift=shift, now=NOW)
    # A counter sale to organisation A's account from organisation B: the account is not found.
    actions.open_shift(vend.station_b, acting_user=vend.clerk_b)
    foreign = client_for(vend.clerk_b).post(
        SALES, {"account": vend.account_a.pk, "amount": "5.00"}, format="json"
    )
    assert foreign.status_code == 400, foreign.content
    for user in (world.admin_b, vend.clerk_b):
        client = client_for(user)
        for fmt in ("txt", "pdf"):
            assert client.get(f"{SALES}{sale.pk}/receipt.{fmt}/").status_code == 404
        assert client.post(f"{SALES}{sale.pk}/reprint/").status_code == 404
    reverse = client_for(world.admin_b).post(
        f"{SALES}{sale.pk}/reverse/", {"reason": "not yours"}, format="json"
    )
    assert reverse.status_code == 404
    sale.refresh_from_db()
    assert (sale.status, sale.reprint_count) == ("completed", 0)
    assert Sale.objects.count() == 1
    # Debt adjustments: organisation B gets 404, read-only users 403; the debt is unchanged.
    adjust = f"{ACCOUNTS}{vend.account_a.pk}/adjust-debt/"
    body = {"change": "10.00", "reason": "arrears"}
    assert client_for(world.admin_b).post(adjust, body, format="json").status_code == 404
    assert client_for(world.readonly_a).post(adjust, body, format="json").status_code == 403
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).debt_balance == 0


def test_management_orders_are_scoped(vend):
    world = vend.world
    order = actions.issue_management_tokens(
        vend.account_a, "clear-tamper", acting_user=world.admin_a, reason="tamper cleared"
    )
    detail = f"{ORDERS}{order.pk}/"
    for user in (world.admin_a, world.readonly_a):
        client = client_for(user)
        response = client.get(detail)
        assert response.status_code == 200, user
        assert response.json()["tokens"], user
        assert order.pk in listed_ids(client, ORDERS), user
    for user in (world.admin_b, world.operator_b, vend.clerk_b):
        client = client_for(user)
        assert client.get(detail).status_code == 404, user
        assert order.pk not in listed_ids(client, ORDERS), user
    # Organisation B's supervisor cannot issue for A's account: the account is not found.
    body = {"account": vend.account_a.pk, "purpose": "clear-tamper", "reason": "x"}
    assert client_for(world.admin_b).post(ORDERS, body, format="json").status_code == 400
    # Read-only users and clerks cannot issue management tokens.
    for user in (world.readonly_a, vend.clerk_a):
        assert client_for(user).post(ORDERS, body, format="json").status_code == 403, user
    assert ManagementOrder.objects.count() == 1
