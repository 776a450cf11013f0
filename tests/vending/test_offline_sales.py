"""Issue 20 (7): a station that vended without the network uploads its sales later.

The "station" here makes its tokens with the STS engine and the meter's decoder key, as an
offline vending terminal holding the key would; the head-end checks and records them.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from rest_framework.test import APIClient

from accounts.models import ActivityLog
from tests.vending.conftest import NOW
from vending import actions, receipts
from vending.choices import MovementKind, SaleChannel
from vending.engine import decoder_key
from vending.errors import IdempotencyConflict, SaleRefused
from vending.models import AccountMovement, PrepaidAccount, Sale, Token
from vending.sts.tid import tid_from_datetime
from vending.sts.tokens import TokenKind, encode_credit

UPLOADED = NOW + timedelta(days=1)
MINUTE = tid_from_datetime(NOW, 2014)


def offline_token(vend, kwh, tid, account=None):
    key = decoder_key(account or vend.account_a)
    return encode_credit(key, TokenKind.CREDIT_ELECTRICITY, D(kwh), issued_at=tid,
                         base_date=2014).digits  # fmt: skip


def upload(vend, *, amount="100.00", kwh="50.0", sold_at=NOW, tid=MINUTE, token=None,
           reference="STA-0001", now=UPLOADED, user=None):  # fmt: skip
    return actions.record_offline_sale(
        vend.account_a, station=vend.station_a, amount=D(amount), currency="ZAR",
        sold_at=sold_at, tid=tid, token=token or offline_token(vend, kwh, tid),
        offline_reference=reference, acting_user=user or vend.clerk_a, now=now,
    )  # fmt: skip


def test_an_offline_sale_is_recorded_with_its_time_and_tid(vend):
    token = offline_token(vend, "50.0", MINUTE)
    sale, created = upload(vend, token=token)
    assert created and sale.channel == SaleChannel.OFFLINE and sale.shift is None
    assert (sale.created_at, sale.recorded_at) == (NOW, UPLOADED)
    assert (sale.amount_paid, sale.energy_kwh, sale.energy_charge) == (
        D("100.00"), D("50.0"), D("100.00"),
    )  # fmt: skip
    stored = sale.credit_token
    assert (stored.tid, stored.issued_at, stored.amount_kwh, stored.digits) == (
        MINUTE, NOW, D("50.0"), token,
    )  # fmt: skip
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).last_tid == MINUTE
    text = receipts.text_receipt(sale)
    assert "Sold offline, ref" in text and "STA-0001" in text and "Uploaded" in text
    log = ActivityLog.objects.get(action="upload_offline_sale")
    assert log.changes["tid"] == MINUTE and log.changes["sold_at"] == NOW.isoformat()
    # The same upload again is the same sale; other figures under its reference conflict.
    again, created = upload(vend, token=token)
    assert again.pk == sale.pk and not created
    with pytest.raises(IdempotencyConflict):
        upload(vend, amount="90.00", token=token)
    # Online sales afterwards keep above the offline TID.
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    online = actions.sell(vend.account_a, D("10"), acting_user=vend.clerk_a, shift=shift, now=NOW)
    assert online.credit_token.tid == MINUTE + 1


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"sold_at": UPLOADED + timedelta(minutes=1)}, "in the future"),
        ({"tid": MINUTE - 1}, "not the minute of the sale"),
        ({"tid": MINUTE + 1441}, "not the minute of the sale"),
        ({"token": "1" * 20}, "does not decode"),
        ({"sold_at": NOW.replace(year=2013)}, "TID range"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(vend, change, reason):
    with pytest.raises(SaleRefused, match=reason):
        upload(vend, **change)
    assert not Sale.objects.exists() and not Token.objects.exists()
    assert ActivityLog.objects.filter(action="upload_offline_sale", outcome="failed").exists()


def test_the_token_must_carry_the_tid_uploaded(vend):
    with pytest.raises(SaleRefused, match=f"carries TID {MINUTE + 5}"):
        upload(vend, token=offline_token(vend, "50", MINUTE + 5))


def test_a_used_tid_and_an_out_of_order_tid_are_refused(vend):
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    actions.sell(vend.account_a, D("10"), acting_user=vend.clerk_a, shift=shift, now=NOW)
    with pytest.raises(SaleRefused, match="already used"):
        upload(vend, sold_at=NOW)
    # The head-end's allocator ran ahead (a burst of sales): TID MINUTE + 31 at NOW.
    PrepaidAccount.objects.filter(pk=vend.account_a.pk).update(last_tid=MINUTE + 30)
    actions.sell(vend.account_a, D("10"), acting_user=vend.clerk_a, shift=shift, now=NOW)
    with pytest.raises(SaleRefused, match="out of order"):
        upload(vend, sold_at=NOW + timedelta(minutes=1), tid=MINUTE + 1)


def test_a_sale_before_the_meters_key_change_is_refused(vend):
    from vending.models import VendingKey

    VendingKey.objects.create(organisation=vend.world.utility, sgc=123456, krn=2,
                              key="0102030405060708")  # fmt: skip
    token = offline_token(vend, "50", MINUTE)  # made with the old key
    actions.issue_management_tokens(
        vend.account_a, "key-change", acting_user=vend.world.admin_a, reason="rotation",
        new_krn=2, now=NOW + timedelta(hours=1),
    )  # fmt: skip
    with pytest.raises(SaleRefused, match="key changed"):
        upload(vend, token=token)


def test_a_late_upload_reprices_the_months_later_sales(vend):
    vend.account_a.tariff = vend.block  # 50 kWh at 1.00, then 2.50
    vend.account_a.save()
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    later = actions.sell(vend.account_a, D("35"), acting_user=vend.clerk_a, shift=shift,
                         now=NOW + timedelta(hours=1))  # fmt: skip
    assert later.energy_kwh == D("35.0")  # from 0 kWh: all at 1.00
    sale, _ = upload(vend, amount="40.00", kwh="40.0")
    assert sale.energy_charge == D("40.00")  # priced from 0 kWh at its own time
    # The later sale's 35 kWh now sit from 40 kWh on: 10 at 1.00 + 25 at 2.50 = 72.50, not 35.
    moved = AccountMovement.objects.get(kind=MovementKind.REPRICE)
    assert (moved.debt_change, moved.created_at) == (D("37.50"), UPLOADED)
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).debt_balance == D("37.50")


def test_energy_the_payment_did_not_cover_is_owed(vend):
    sale, _ = upload(vend, amount="10.00", kwh="10.0")  # 10 kWh at 2.00 = 20.00
    assert (sale.energy_charge, sale.breakdown["energy_debt"]) == (D("20.00"), "10.00")
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).debt_balance == D("10.00")


def test_offline_upload_api(vend):
    url = "/api/vending/offline-sales/"
    body = {"station": vend.station_a.pk, "meter_number": vend.account_a.meter_number,
            "amount": "100.00", "currency": "ZAR", "sold_at": "2025-05-05T05:05:00Z",
            "tid": MINUTE, "token": offline_token(vend, "50", MINUTE),
            "offline_reference": "STA-0001"}  # fmt: skip
    clerk = APIClient()
    clerk.force_authenticate(vend.clerk_a)
    first = clerk.post(url, body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["channel"] == "offline" and first.json()["token"]["tid"] == MINUTE
    assert clerk.post(url, body, format="json").status_code == 200
    assert clerk.post(url, {**body, "amount": "90.00"}, format="json").status_code == 409
    late = {**body, "sold_at": "2999-01-01T00:00:00Z", "offline_reference": "STA-0002"}
    assert clerk.post(url, late, format="json").status_code == 422
    assert clerk.post(url, {**body, "token": "12"}, format="json").status_code == 400
    # A clerk of another station, another organisation, a read-only user: nothing recorded.
    other = APIClient()
    other.force_authenticate(vend.clerk_a2)
    assert other.post(url, {**body, "offline_reference": "X"}, format="json").status_code == 404
    b_clerk = APIClient()
    b_clerk.force_authenticate(vend.clerk_b)
    assert b_clerk.post(url, {**body, "offline_reference": "Y"}, format="json").status_code == 400
    readonly = APIClient()
    readonly.force_authenticate(vend.world.readonly_a)
    assert readonly.post(url, {**body, "offline_reference": "Z"}, format="json").status_code == 403
    assert Sale.objects.count() == 1
