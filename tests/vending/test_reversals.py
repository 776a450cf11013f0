"""Issue 20 (2), (3), (4): reversal policy, entered tokens, refunds at a drawer."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from accounts.models import ActivityLog
from tests.vending.conftest import NOW
from vending import actions, receipts
from vending.choices import MovementKind, SaleStatus
from vending.errors import SaleRefused
from vending.models import AccountMovement, PrepaidAccount, Sale, Shift


def shift_of(vend, clerk=None, station=None, opening_float=D("0")):
    clerk = clerk or vend.clerk_a
    found = Shift.objects.filter(clerk=clerk, status="open").first()
    return found or actions.open_shift(station or vend.station_a, acting_user=clerk,
                                       opening_float=opening_float)  # fmt: skip


def sell(vend, amount, *, now=NOW, shift=None):
    shift = shift or shift_of(vend)
    return actions.sell(vend.account_a, D(amount), acting_user=shift.clerk, shift=shift, now=now)


def reverse(vend, sale, *, now=None, entered=False, **kwargs):
    kwargs.setdefault("refund_shift", Shift.objects.filter(status="open").first())
    return actions.reverse_sale(
        sale, acting_user=vend.world.admin_a, reason="wrong meter", token_entered=entered,
        now=now or sale.created_at + timedelta(hours=1), **kwargs,
    )  # fmt: skip


def balances(vend):
    account = PrepaidAccount.objects.get(pk=vend.account_a.pk)
    return account.debt_balance, account.credit_balance


def test_reversal_window(vend):
    sale = sell(vend, "20")
    with pytest.raises(SaleRefused, match="30-day reversal window"):
        reverse(vend, sale, now=NOW + timedelta(days=30, seconds=1))
    assert Sale.objects.get(pk=sale.pk).status == SaleStatus.COMPLETED
    assert ActivityLog.objects.filter(action="reverse_sale", outcome="failed").exists()
    reverse(vend, sale, now=NOW + timedelta(days=29))
    assert Sale.objects.get(pk=sale.pk).status == SaleStatus.REVERSED


def test_reversing_an_early_sale_reprices_the_later_ones_into_a_credit(vend):
    """Issue 20 (2): later sales of the month stayed priced in the higher block."""
    vend.account_a.tariff = vend.block  # 50 kWh at 1.00, then 2.50
    vend.account_a.save()
    first = sell(vend, "40")  # 40 kWh
    second = sell(vend, "35", now=NOW + timedelta(hours=1))  # 10 at 1.00 + 10 at 2.50
    third = sell(vend, "25", now=NOW + timedelta(hours=2))  # 10 at 2.50
    assert (second.energy_kwh, third.energy_kwh) == (D("20.0"), D("10.0"))
    reversal = reverse(vend, first, now=NOW + timedelta(hours=3))
    # Without the first sale: 20 kWh at 1.00 (20.00, not 35.00) and 10 kWh at 1.00 (10.00,
    # not 25.00): 15.00 + 15.00 overcharged, credited to the account.
    assert reversal.reprice_credit == D("30.00")
    assert [row["difference"] for row in reversal.details["repriced"]] == ["15.00", "15.00"]
    assert balances(vend) == (D("0"), D("30.00"))
    # The next sale of the month is priced from 30 kWh (not 70) and spends the credit.
    fourth = sell(vend, "10", now=NOW + timedelta(hours=4))
    assert (fourth.credit_used, fourth.energy_kwh) == (D("30.00"), D("28.0"))  # 20 @1 + 8 @2.5


def test_reversing_a_fixed_charge_sale_next_month_keeps_the_charge_owed(vend):
    """Issue 20 (2): reversing it in the next month lost the month's fixed charge."""
    vend.flat.fixed_charge_monthly = D("20")
    vend.flat.tax_percent = D("15")
    vend.flat.save()
    may = sell(vend, "100", now=NOW.replace(day=25))
    assert (may.fixed_charge, may.tax) == (D("20.00"), D("13.02"))  # 3.00 + 10.02
    reversal = reverse(vend, may, now=NOW.replace(month=6, day=2))
    assert reversal.fixed_charge_debt == D("23.00")
    assert balances(vend) == (D("23.00"), D("0"))
    owed = AccountMovement.objects.get(kind=MovementKind.FIXED_REBILLED)
    assert (str(owed.period), owed.tax) == ("2025-05-01", D("3.00"))


def test_reversing_the_months_only_fixed_charge_sale_bills_it_on_the_next(vend):
    vend.flat.fixed_charge_monthly = D("20")
    vend.flat.save()
    first = sell(vend, "100")
    reversal = reverse(vend, first)
    assert reversal.fixed_charge_debt == 0 and balances(vend) == (0, 0)
    assert sell(vend, "100", now=NOW + timedelta(hours=2)).fixed_charge == D("20.00")


def test_a_reversal_must_say_whether_the_token_was_entered(vend):
    sale = sell(vend, "20")
    with pytest.raises(SaleRefused, match="whether the token was entered"):
        reverse(vend, sale, entered=None)
    assert Sale.objects.get(pk=sale.pk).status == SaleStatus.COMPLETED


def test_an_entered_token_becomes_a_compensating_debt_and_the_receipt_says_so(vend):
    """Issue 20 (3): the receipt said "TOKEN NOT VALID FOR CREDIT" once it was entered."""
    vend.flat.tax_percent = D("15")
    vend.flat.save()
    sale = sell(vend, "100")  # 43.4 kWh: 86.80 + 13.02 tax, 0.18 carried
    reversal = reverse(vend, sale, entered=True, evidence="customer's meter shows the credit")
    assert reversal.compensating_debt == D("99.82")
    assert reversal.refund_amount == D("100.00")
    assert balances(vend) == (D("99.82"), D("0.00"))
    owed = AccountMovement.objects.get(kind=MovementKind.COMPENSATING_DEBT)
    assert owed.tax == D("13.02")
    text = receipts.text_receipt(Sale.objects.get(pk=sale.pk))
    assert "Token was entered in the meter" in text and "99.82" in text
    assert "NOT VALID" not in text
    # The entered energy still counts in the month's blocks (no re-pricing, no refund of it).
    assert actions.kwh_bought_in_month(vend.account_a, NOW + timedelta(days=1)) == D("43.4")


def test_refunds_are_paid_at_an_open_drawer_and_closed_shifts_never_change(vend):
    """Issue 20 (4): a reversal a month later silently lowered a closed shift's cash."""
    shift = shift_of(vend, opening_float=D("50"))
    sell(vend, "100", shift=shift)
    refunded = sell(vend, "30", shift=shift)
    closed = actions.close_shift(shift, cash_counted=D("180.00"), acting_user=vend.clerk_a)
    assert (closed.expected_cash, closed.variance) == (D("180.00"), D("0.00"))
    # The closed drawer cannot pay the refund; neither can nobody without a reference.
    with pytest.raises(SaleRefused, match="open shift"):
        reverse(vend, refunded, refund_shift=closed)
    with pytest.raises(SaleRefused, match="reference"):
        reverse(vend, refunded, refund_shift=None)
    later = shift_of(vend, opening_float=D("20"))
    reversal = reverse(vend, refunded, refund_shift=later)
    assert reversal.refund_shift == later and reversal.refund_amount == D("30.00")
    assert actions.expected_cash(Shift.objects.get(pk=closed.pk)) == D("180.00")
    assert actions.expected_cash(later) == D("-10.00")  # 20 float - 30 paid out
    sell(vend, "40", shift=later)
    assert actions.close_shift(later, cash_counted=D("30"), acting_user=vend.clerk_a).variance == 0


def test_a_refund_outside_the_drawers_needs_its_reference(vend):
    sale = sell(vend, "30")
    reversal = reverse(vend, sale, refund_shift=None, refund_reference="EFT 2025-0042")
    assert reversal.refund_shift is None and reversal.refund_reference == "EFT 2025-0042"
    assert "EFT 2025-0042" in receipts.text_receipt(Sale.objects.get(pk=sale.pk))


def test_carried_money_a_later_sale_spent_is_kept_from_the_refund(vend):
    vend.flat.price_per_kwh = D("3")
    vend.flat.save()
    first = sell(vend, "10.00")  # 3.3 kWh for 9.90; 0.10 carried
    sell(vend, "9.80", now=NOW + timedelta(minutes=1))  # 9.90 spent: 3.3 kWh, 0 carried
    assert balances(vend) == (0, 0)
    reversal = reverse(vend, first)
    assert (reversal.refund_amount, reversal.credit_restored) == (D("9.90"), D("0.00"))
    assert balances(vend) == (0, 0)


def test_the_sale_page_reverses_with_the_question_and_the_account_shows_the_ledger(vend):
    from django.test import Client

    from vending.models import SaleReversal

    vend.flat.price_per_kwh = D("3")
    vend.flat.save()
    from django.utils import timezone

    sale = sell(vend, "10.00", now=timezone.now() - timedelta(hours=1))  # the page reverses now
    client = Client()
    client.force_login(vend.world.admin_a)
    url = f"/vending/sales/{sale.reference}/reverse/"
    form = {"reason": "wrong meter", "token_entered": "", "refund_shift": sale.shift_id}
    client.post(url, form)
    assert not SaleReversal.objects.exists()  # the question was not answered
    client.post(url, {**form, "token_entered": "yes", "evidence": "meter shows it"})
    reversal = SaleReversal.objects.get()
    assert reversal.token_entered and reversal.compensating_debt == D("9.90")
    page = client.get(f"/vending/sales/{sale.reference}/").content.decode()
    assert "Token was entered in the meter" in page and "9.90 owed as debt" in page
    history = client.get(f"/vending/accounts/{vend.account_a.pk}/").content.decode()
    assert 'id="movements"' in history and "Entered token of a reversed sale" in history
    assert "Carried forward" in history
