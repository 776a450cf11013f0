"""Tariff computations with exact Decimal expectations (rounding rules: vending/tariffs.py)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from vending.errors import SaleRefused
from vending.sts.amount import decode_units, encode_units
from vending.tariffs import quote, representable_at_most


def test_flat_tariff(vend):
    q = quote(vend.flat, D("100"))
    assert (q.energy_kwh, q.energy_charge, q.tax, q.fixed_charge) == (D("50.0"), D("100.00"), 0, 0)


def test_energy_rounds_down_to_a_tenth_and_the_rest_is_carried(vend):
    # Issue 20 (1): 10.00 at 3.00/kWh buys 3.333 kWh; the token carries 3.3. The customer
    # paid 10.00 for 3.3 kWh and `uncredited_kwh` read 0.0.
    vend.flat.price_per_kwh = D("3")
    q = quote(vend.flat, D("10.00"))
    assert q.energy_kwh == D("3.3")
    assert q.breakdown()["uncredited_kwh"] == "0.0333"
    assert (q.energy_charge, q.credit_carried) == (D("9.90"), D("0.10"))
    # The next purchase spends what was carried.
    q = quote(vend.flat, D("10.00"), credit_balance=D("0.10"))
    assert (q.credit_used, q.energy_kwh, q.energy_charge, q.credit_carried) == (
        D("0.10"), D("3.3"), D("9.90"), D("0.20"),
    )  # fmt: skip


def test_tax_is_included_and_lines_add_up(vend):
    vend.flat.tax_percent = D("15")
    q = quote(vend.flat, D("100.00"))
    # 100 / 1.15 buys 43.478 kWh; 43.4 are credited and charged: 86.80 + 13.02 tax. Before
    # issue 20 the sale charged 86.96 + 13.04 for the same 43.4 kWh.
    assert q.energy_kwh == D("43.4")
    assert (q.energy_charge, q.tax, q.credit_carried) == (D("86.80"), D("13.02"), D("0.18"))
    assert q.tax + q.energy_charge + q.fixed_charge + q.debt_recovered + q.credit_carried == (
        q.amount_paid
    )


def test_fixed_charge_taken_when_due(vend):
    vend.flat.fixed_charge_monthly = D("20")
    due = quote(vend.flat, D("100"), fixed_charge_due=True)
    assert (due.fixed_charge, due.energy_charge, due.energy_kwh) == (
        D("20.00"),
        D("80.00"),
        D("40.0"),
    )
    assert quote(vend.flat, D("100"), fixed_charge_due=False).energy_kwh == D("50.0")
    # Issue 20 (5): a payment that cannot cover the fixed charge is no longer refused; at
    # most half of it goes to charges and debt, the rest of the fixed charge is owed.
    small = quote(vend.flat, D("20"), fixed_charge_due=True)
    assert (small.fixed_charge, small.fixed_charge_debt, small.energy_kwh) == (
        D("10.00"), D("10.00"), D("5.0"),
    )  # fmt: skip
    vend.flat.fixed_charge_shortfall_to_debt = False
    with pytest.raises(SaleRefused, match="fixed charge"):
        quote(vend.flat, D("20"), fixed_charge_due=True)


def test_debt_recovery_is_a_share_until_paid(vend):
    vend.flat.debt_recovery_percent = D("25")
    q = quote(vend.flat, D("100"), debt_balance=D("60"))
    assert (q.debt_recovered, q.energy_kwh) == (D("25.00"), D("37.5"))
    q = quote(vend.flat, D("100"), debt_balance=D("10.01"))
    assert (q.debt_recovered, q.energy_kwh, q.energy_charge) == (D("10.01"), D("44.9"), D("89.80"))
    assert q.credit_carried == D("0.19")
    assert quote(vend.flat, D("100"), debt_balance=D("0")).debt_recovered == 0


def test_block_tariff_crossing_a_step(vend):
    # 50 kWh at 1.00 then 2.50; 40 kWh already bought this month: 10 kWh left in block 1.
    q = quote(vend.block, D("35"), kwh_bought_this_month=D("40"))
    assert q.energy_kwh == D("20.0")  # 10 kWh for 10.00 + 10 kWh for 25.00
    lines = q.breakdown()["blocks"]
    assert [(x["kwh"], x["money"]) for x in lines] == [("10.0", "10.00"), ("10.0", "25.00")]
    # Entirely in the upper block once the first is used up.
    assert quote(vend.block, D("25"), kwh_bought_this_month=D("60")).energy_kwh == D("10.0")
    # Entirely in the first block.
    assert quote(vend.block, D("25")).energy_kwh == D("25.0")


def test_representable_at_most_never_exceeds_what_was_paid():
    assert representable_at_most(16383) == 16383  # 1638.3 kWh: exact in the first range
    assert representable_at_most(16384) == 16384
    assert representable_at_most(16389) == 16384  # 10-tenth steps above 1638.3 kWh
    for tenths in (1, 999, 16385, 180_223, 180_225, 1_818_625, 18_201_624):
        value = representable_at_most(tenths)
        assert value <= tenths
        assert decode_units(encode_units(value)) == value


def test_large_amount_credits_a_representable_value(vend):
    vend.flat.price_per_kwh = D("0.1")
    q = quote(vend.flat, D("200.00"))  # 2000.0 kWh; tokens carry 1638.4 + n kWh up there
    assert q.computed_kwh == D("2000.0")
    assert q.energy_kwh == D("1999.4")
    assert q.breakdown()["uncredited_kwh"] == "0.6000"
    # Charged for the 1999.4 kWh credited; the 0.6 kWh's money is carried forward.
    assert (q.energy_charge, q.credit_carried) == (D("199.94"), D("0.06"))
    q = quote(vend.flat, D("163.89"))  # 1638.9 kWh -> 1638.4 representable
    assert (q.computed_kwh, q.energy_kwh) == (D("1638.9"), D("1638.4"))


def test_amount_must_be_whole_cents(vend):
    with pytest.raises(SaleRefused):
        quote(vend.flat, D("1.005"))
    with pytest.raises(SaleRefused, match="less than 0.1"):
        quote(vend.flat, D("0.10"))
