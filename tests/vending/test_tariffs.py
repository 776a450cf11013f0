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


def test_energy_rounds_down_to_a_tenth(vend):
    vend.flat.price_per_kwh = D("3")
    q = quote(vend.flat, D("10.00"))  # 3.333... kWh
    assert q.energy_kwh == D("3.3")
    assert q.breakdown()["uncredited_kwh"] == "0.0"


def test_tax_is_included_and_lines_add_up(vend):
    vend.flat.tax_percent = D("15")
    q = quote(vend.flat, D("100.00"))
    assert q.tax == D("13.04")  # net = round(100 / 1.15) = 86.96
    assert q.energy_charge == D("86.96")
    assert q.energy_kwh == D("43.4")  # 43.48 rounded down
    assert q.tax + q.energy_charge + q.fixed_charge + q.debt_recovered == q.amount_paid


def test_fixed_charge_taken_when_due(vend):
    vend.flat.fixed_charge_monthly = D("20")
    due = quote(vend.flat, D("100"), fixed_charge_due=True)
    assert (due.fixed_charge, due.energy_charge, due.energy_kwh) == (
        D("20.00"),
        D("80.00"),
        D("40.0"),
    )
    assert quote(vend.flat, D("100"), fixed_charge_due=False).energy_kwh == D("50.0")
    with pytest.raises(SaleRefused, match="fixed charge"):
        quote(vend.flat, D("20"), fixed_charge_due=True)


def test_debt_recovery_is_a_share_until_paid(vend):
    vend.flat.debt_recovery_percent = D("25")
    q = quote(vend.flat, D("100"), debt_balance=D("60"))
    assert (q.debt_recovered, q.energy_kwh) == (D("25.00"), D("37.5"))
    q = quote(vend.flat, D("100"), debt_balance=D("10.01"))
    assert (q.debt_recovered, q.energy_charge) == (D("10.01"), D("89.99"))
    assert quote(vend.flat, D("100"), debt_balance=D("0")).debt_recovered == 0


def test_block_tariff_crossing_a_step(vend):
    # 50 kWh at 1.00 then 2.50; 40 kWh already bought this month: 10 kWh left in block 1.
    q = quote(vend.block, D("35"), kwh_bought_this_month=D("40"))
    assert q.energy_kwh == D("20.0")  # 10 kWh for 10.00 + 10 kWh for 25.00
    lines = q.breakdown()["blocks"]
    assert [(x["kwh"], x["money"]) for x in lines] == [("10.0000", "10.00"), ("10.0000", "25.00")]
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
    assert q.breakdown()["uncredited_kwh"] == "0.6"
    q = quote(vend.flat, D("163.89"))  # 1638.9 kWh -> 1638.4 representable
    assert (q.computed_kwh, q.energy_kwh) == (D("1638.9"), D("1638.4"))


def test_amount_must_be_whole_cents(vend):
    with pytest.raises(SaleRefused):
        quote(vend.flat, D("1.005"))
    with pytest.raises(SaleRefused, match="less than 0.1"):
        quote(vend.flat, D("0.10"))
