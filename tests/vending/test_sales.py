"""Sales end to end: tokens decode to what was paid for, TIDs, failures, reversal, shifts."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from accounts.choices import Outcome
from accounts.models import ActivityLog
from tests.vending.conftest import NOW, VK02_HEX
from vending import actions
from vending.choices import SaleStatus
from vending.engine import decoder_key
from vending.errors import SaleRefused, VendingUnavailable
from vending.models import PrepaidAccount, Sale, SaleReversal, Token, VendingKey
from vending.sts.tid import tid_from_datetime
from vending.sts.tokens import decode_token


def open_shift(vend, clerk=None, station=None):
    return actions.open_shift(station or vend.station_a, acting_user=clerk or vend.clerk_a)


def sell(vend, amount="100", *, now=NOW, shift=None, account=None):
    shift = shift or open_shift(vend)
    return actions.sell(account or vend.account_a, D(amount), acting_user=shift.clerk,
                        shift=shift, now=now)  # fmt: skip


def reverse(vend, sale, *, acting_user=None, reason="wrong meter", entered=False, **kwargs):
    """A supervisor's reversal, refunded at the sale's own drawer unless told otherwise."""
    kwargs.setdefault("refund_shift", sale.shift)
    kwargs.setdefault("now", sale.created_at + timedelta(minutes=1))
    return actions.reverse_sale(sale, acting_user=acting_user or vend.world.admin_a,
                                reason=reason, token_entered=entered, **kwargs)  # fmt: skip


def test_sale_token_decodes_to_the_amount_and_tid(vend):
    sale = sell(vend)
    token = sale.credit_token
    decoded = decode_token(token.digits, decoder_key(vend.account_a), base_date=2014)
    assert decoded.kind.value == "credit-electricity"
    assert decoded.amount == sale.energy_kwh == D("50.0")
    assert decoded.tid == token.tid == tid_from_datetime(NOW, 2014)
    assert decoded.issued_at == NOW.replace(second=0)
    log = ActivityLog.objects.get(action="sell", object_id=str(sale.pk))
    assert log.changes["tid"] == token.tid and VK02_HEX not in str(log.changes)


def test_same_minute_sales_take_the_next_free_minute(vend):
    shift = open_shift(vend)
    tids = [sell(vend, "10", shift=shift).credit_token.tid for _ in range(3)]
    base = tid_from_datetime(NOW, 2014)
    assert tids == [base, base + 1, base + 2]
    # Real time later than the allocator: back to the clock.
    later = sell(vend, "10", shift=shift, now=NOW + timedelta(hours=1)).credit_token.tid
    assert later == base + 60
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).last_tid == base + 60


def test_tid_unique_constraint_is_the_backstop(vend):
    from django.db import IntegrityError, transaction

    token = sell(vend).credit_token
    with pytest.raises(IntegrityError), transaction.atomic():
        Token.objects.create(
            organisation=token.organisation, account=token.account, meter=token.meter,
            purpose="clear-tamper", kind="clear-tamper", digits="0" * 20,
            base_date=token.base_date, tid=token.tid,
        )  # fmt: skip


def test_missing_vending_key_leaves_nothing(vend):
    VendingKey.objects.all().delete()
    shift = open_shift(vend)
    with pytest.raises(VendingUnavailable, match="no vending key"):
        sell(vend, shift=shift)
    assert not Sale.objects.exists() and not Token.objects.exists()
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).last_tid == 0
    failed = ActivityLog.objects.get(action="sell", outcome=Outcome.FAILED)
    assert "no vending key" in failed.detail


def test_selling_needs_an_open_shift(vend):
    shift = open_shift(vend)
    actions.close_shift(shift, cash_counted=D("0"), acting_user=vend.clerk_a)
    with pytest.raises(SaleRefused, match="open a shift"):
        actions.sell(vend.account_a, D("10"), acting_user=vend.clerk_a, shift=shift)


def test_fixed_charge_once_per_month(vend):
    vend.flat.fixed_charge_monthly = D("20")
    vend.flat.save()
    shift = open_shift(vend)
    first = sell(vend, shift=shift)
    second = sell(vend, shift=shift, now=NOW + timedelta(days=1))
    next_month = sell(vend, shift=shift, now=NOW + timedelta(days=40))
    assert [s.fixed_charge for s in (first, second, next_month)] == [D("20"), 0, D("20")]
    assert first.energy_kwh == D("40.0") and second.energy_kwh == D("50.0")


def test_fixed_charge_due_again_after_reversal(vend):
    vend.flat.fixed_charge_monthly = D("20")
    vend.flat.save()
    shift = open_shift(vend)
    first = sell(vend, shift=shift)
    reverse(vend, first)
    assert sell(vend, shift=shift, now=NOW + timedelta(minutes=5)).fixed_charge == D("20")


def test_debt_recovery_stops_when_paid(vend):
    vend.flat.debt_recovery_percent = D("50")
    vend.flat.save()
    actions.adjust_debt(vend.account_a, D("30"), acting_user=vend.world.admin_a, reason="arrears")
    shift = open_shift(vend)
    recovered = [sell(vend, "40", shift=shift).debt_recovered for _ in range(3)]
    assert recovered == [D("20.00"), D("10.00"), D("0.00")]
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).debt_balance == 0


def test_block_tariff_uses_kwh_bought_this_month(vend):
    vend.account_a.tariff = vend.block
    vend.account_a.save()
    shift = open_shift(vend)
    assert sell(vend, "40", shift=shift).energy_kwh == D("40.0")
    # 10 kWh left at 1.00, then 2.50: 35.00 buys 10 + 10.
    assert sell(vend, "35", shift=shift).energy_kwh == D("20.0")


def test_reversal_is_its_own_row_and_restores_debt(vend):
    vend.flat.debt_recovery_percent = D("10")
    vend.flat.save()
    actions.adjust_debt(vend.account_a, D("50"), acting_user=vend.world.admin_a, reason="x")
    sale = sell(vend)
    with pytest.raises(PermissionDenied):
        reverse(vend, sale, acting_user=vend.clerk_a)
    reversal = reverse(vend, sale)
    assert reversal.refund_amount == D("100.00") and reversal.debt_restored == D("10.00")
    sale.refresh_from_db()
    assert sale.status == SaleStatus.REVERSED
    assert PrepaidAccount.objects.get(pk=vend.account_a.pk).debt_balance == D("50.00")
    with pytest.raises(SaleRefused, match="already reversed"):
        reverse(vend, sale, reason="again")
    assert SaleReversal.objects.count() == 1 and Sale.objects.filter(pk=sale.pk).exists()
    assert ActivityLog.objects.filter(action="reverse_sale", outcome=Outcome.DENIED).exists()


def test_shift_reconciliation(vend):
    shift = actions.open_shift(vend.station_a, acting_user=vend.clerk_a, opening_float=D("50"))
    with pytest.raises(SaleRefused, match="already have an open shift"):
        actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    sell(vend, "100", shift=shift)
    reversed_sale = sell(vend, "30", shift=shift)
    sell(vend, "20.50", shift=shift)
    reverse(vend, reversed_sale)
    closed = actions.close_shift(shift, cash_counted=D("170.00"), acting_user=vend.clerk_a)
    assert closed.expected_cash == D("170.50")
    assert closed.variance == D("-0.50")
    with pytest.raises(SaleRefused):
        actions.close_shift(shift, cash_counted=D("1"), acting_user=vend.clerk_a)


def test_clerk_opens_shifts_only_at_their_station(vend):
    with pytest.raises(PermissionDenied):
        actions.open_shift(vend.station_b, acting_user=vend.clerk_a)


def test_management_tokens(vend):
    admin = vend.world.admin_a
    with pytest.raises(PermissionDenied):
        actions.issue_management_tokens(vend.account_a, "max-power", acting_user=vend.clerk_a,
                                        reason="x", watts=2000)  # fmt: skip
    key = decoder_key(vend.account_a)
    order = actions.issue_management_tokens(
        vend.account_a, "max-power", acting_user=admin, reason="overload", watts=2000, now=NOW
    )
    decoded = decode_token(order.tokens.get().digits, key, base_date=2014)
    assert (decoded.kind.value, decoded.watts) == ("max-power", 2000)
    tamper = actions.issue_management_tokens(
        vend.account_a, "clear-tamper", acting_user=admin, reason="site visit", now=NOW
    )
    assert decode_token(tamper.tokens.get().digits, key).tid == decoded.tid + 1
    VendingKey.objects.create(organisation=vend.world.utility, sgc=123456, krn=2,
                              key="0102030405060708")  # fmt: skip
    change = actions.issue_management_tokens(
        vend.account_a, "key-change", acting_user=admin, reason="rotation", new_krn=2, now=NOW
    )
    sections = [decode_token(t.digits, key).kind.value for t in change.tokens.order_by("sequence")]
    assert sections == ["key-change-1", "key-change-2"]
    account = PrepaidAccount.objects.get(pk=vend.account_a.pk)
    assert account.krn == 2
    # Later sales use the new key.
    sale = sell(vend, account=account)
    assert decode_token(sale.credit_token.digits, decoder_key(account)).amount == D("50.0")


def _threaded(n, fn):
    errors, results = [], []
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout=30)
            results.append(fn(i))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_sales_never_share_a_tid(world):
    from tests.vending.conftest import make_vending
    from vending.choices import SaleChannel

    vend = make_vending(world)

    def buy(i):
        sale, _ = actions.pay(
            vend.account_a, D("10"), currency="ZAR", payment_reference=f"p{i}",
            idempotency_key=f"k{i}", acting_user=vend.integration_a, now=NOW,
        )  # fmt: skip
        return sale.credit_token.tid

    tids, errors = _threaded(20, buy)
    assert not errors, errors
    assert len(tids) == 20 and len(set(tids)) == 20
    base = tid_from_datetime(NOW, 2014)
    assert sorted(tids) == list(range(base, base + 20))
    assert Sale.objects.filter(channel=SaleChannel.API).count() == 20
