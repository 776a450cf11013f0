"""Issue 20 (6): the vending reports (reports/vending.py) for a period in the utility's
zone, with reversals and debt.

One story in Johannesburg (UTC+2), tariff 2.00/kWh, VAT 15 %, fixed charge 20.00/month:

* 5 May, shift 1 (float 50): 100.00 -> fixed 20.00 + 3.00 tax; 77.00 buys 33.4 kWh
  (66.80 + 10.02 tax); 0.18 carried forward. Shift 1 closes with 150.00 counted.
* 31 May 22:30 UTC = 1 June 00:30 local, shift 2 (float 100): 50.00 -> June's fixed charge
  23.00; 27.00 + 0.18 carried buys 11.8 kWh (23.60 + 3.54 tax); 0.04 carried.
* 2 June: the May sale is reversed (token not entered), refunded at shift 2's drawer:
  100.00 less the 0.14 of its carried money the June sale spent = 99.86; May's fixed charge
  (23.00 with 3.00 tax) is owed as debt. Shift 2 closes expecting 100 + 50 - 99.86.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from reports import vending as vending_reports
from reports.vending import Period
from tests.vending.conftest import make_vending
from vending import actions


@pytest.fixture
def vend(world):
    """The vending world of tests/vending/ (tariffs, keys, stations, clerks, accounts)."""
    return make_vending(world)


@pytest.fixture
def story(vend):
    with override_settings(TIME_ZONE="Africa/Johannesburg"):
        tariff = vend.flat
        tariff.fixed_charge_monthly, tariff.tax_percent = D("20"), D("15")
        tariff.save()
        clerk = vend.clerk_a
        may5 = datetime(2025, 5, 5, 8, tzinfo=UTC)
        shift1 = actions.open_shift(vend.station_a, acting_user=clerk, opening_float=D("50"),
                                    now=may5)  # fmt: skip
        may = actions.sell(vend.account_a, D("100"), acting_user=clerk, shift=shift1, now=may5)
        actions.close_shift(shift1, cash_counted=D("150"), acting_user=clerk,
                            now=datetime(2025, 5, 5, 16, tzinfo=UTC))  # fmt: skip
        june1 = datetime(2025, 5, 31, 22, 30, tzinfo=UTC)
        shift2 = actions.open_shift(vend.station_a, acting_user=clerk, opening_float=D("100"),
                                    now=june1)  # fmt: skip
        june = actions.sell(vend.account_a, D("50"), acting_user=clerk, shift=shift2, now=june1)
        reversal = actions.reverse_sale(
            may, acting_user=vend.world.admin_a, reason="paid twice", token_entered=False,
            refund_shift=shift2, now=datetime(2025, 6, 2, 9, tzinfo=UTC),
        )  # fmt: skip
        actions.close_shift(shift2, cash_counted=D("50.14"), acting_user=clerk,
                            now=datetime(2025, 6, 2, 16, tzinfo=UTC))  # fmt: skip
        yield vend, may, june, reversal


def report(vend, slug, first, last, user=None):
    with override_settings(TIME_ZONE="Africa/Johannesburg"):
        src = vending_reports.sources_for(user or vend.world.admin_a)
        return vending_reports.build(
            slug, src, Period(date.fromisoformat(first), date.fromisoformat(last))
        )[2]


def test_the_story_figures(story):
    _vend, may, june, reversal = story
    assert (may.fixed_charge, may.energy_kwh, may.energy_charge, may.tax, may.credit_carried) == (
        D("20.00"), D("33.4"), D("66.80"), D("13.02"), D("0.18"),
    )  # fmt: skip
    assert (june.fixed_charge, june.energy_kwh, june.tax, june.credit_carried) == (
        D("20.00"), D("11.8"), D("6.54"), D("0.04"),
    )  # fmt: skip
    assert (reversal.refund_amount, reversal.fixed_charge_debt) == (D("99.86"), D("23.00"))


def test_monthly_revenue_counts_a_reversal_in_its_own_month(story):
    vend = story[0]
    rows = {row["month"]: row for row in report(vend, "revenue", "2025-05-01", "2025-06-30")}
    may, june = rows["2025-05"], rows["2025-06"]
    assert (may["sales"], may["amount_paid"], may["net_revenue"], may["output_tax"]) == (
        1, D("100.00"), D("86.80"), D("13.02"),
    )  # fmt: skip
    assert (june["sales"], june["reversed"], june["refunds"], june["reversed_net"]) == (
        1, 1, D("99.86"), D("86.80"),
    )  # fmt: skip
    assert (june["debt_net"], june["debt_tax"]) == (D("20.00"), D("3.00"))
    assert (june["net_revenue"], june["output_tax"]) == (D("-23.20"), D("-3.48"))
    # A closed month does not change: May alone reads the same after June's reversal.
    assert report(vend, "revenue", "2025-05-01", "2025-05-31") == [may]


def test_vat_return(story):
    (row,) = report(story[0], "vat", "2025-05-01", "2025-06-30")
    assert (row["sales_net"], row["sales_tax"]) == (D("130.40"), D("19.56"))
    assert (row["reversed_net"], row["reversed_tax"]) == (D("86.80"), D("13.02"))
    assert (row["debt_net"], row["debt_tax"]) == (D("20.00"), D("3.00"))
    # What is left: the June sale (43.60 + 6.54) and May's fixed charge owed (20.00 + 3.00).
    assert (row["taxable_supplies"], row["output_tax"]) == (D("63.60"), D("9.54"))


def test_sales_per_station_clerk_shift_and_local_day(story):
    vend, may, june, _ = story
    rows = report(vend, "by-station", "2025-05-01", "2025-06-30")
    assert [(str(r["day"]), r["shift"], r["amount_paid"], r["energy_charge"]) for r in rows] == [
        ("2025-05-05", may.shift_id, D("100.00"), D("66.80")),
        ("2025-06-01", june.shift_id, D("50.00"), D("23.60")),  # 31 May 22:30 UTC
    ]
    assert rows[0]["sold_by__username"] == "clerk-a" and rows[0]["station__code"] == "STA"


def test_cash_reconciliation_per_station_and_day(story):
    rows = report(story[0], "cash", "2025-05-01", "2025-06-30")
    figures = [(str(r["day"]), r["cash_taken"], r["refunds_paid"], r["expected"], r["variance"])
               for r in rows]  # fmt: skip
    assert figures == [
        ("2025-05-05", D("100.00"), D("0"), D("150.00"), D("0.00")),
        ("2025-06-01", D("50.00"), D("0"), D("0"), D("0")),
        ("2025-06-02", D("0"), D("99.86"), D("50.14"), D("0.00")),
    ]


def test_debt_and_carried_money_roll_forward(story):
    rows = report(story[0], "debt-movements", "2025-05-01", "2025-06-30")
    assert [(r["line"], r["debt"], r["carried"]) for r in rows] == [
        ("Opening balance", D("0"), D("0")),
        ("Fixed charge of a reversed sale, owed again", D("23.00"), D("0.00")),
        ("Reversal (recovered debt and carried money restored)", D("0.00"), D("-0.04")),
        ("Sale (debt recovered, money carried forward)", D("0.00"), D("0.04")),
        ("Closing balance", D("23.00"), D("0.00")),
    ]
    june = report(story[0], "debt-movements", "2025-06-01", "2025-06-30")
    assert (june[0]["carried"], june[-1]["debt"]) == (D("0.18"), D("23.00"))


def test_remainder_balances_at_the_period_end(story):
    vend = story[0]
    may = report(vend, "remainders", "2025-05-01", "2025-05-31")
    assert [(r["meter_number"], r["carried_at"]) for r in may] == [
        (vend.account_a.meter_number, D("0.18"))
    ]
    assert report(vend, "remainders", "2025-05-01", "2025-06-30") == []


def test_reports_are_scoped(story):
    vend = story[0]
    for slug in vending_reports.TABLES:
        assert report(vend, slug, "2025-05-01", "2025-06-30", user=vend.world.operator_b) in (
            [], [{"line": "Opening balance", "movements": "", "debt": 0, "carried": 0, "tax": ""},
                 {"line": "Closing balance", "movements": "", "debt": 0, "carried": 0, "tax": ""}],
        ), slug  # fmt: skip


def test_reports_api_json_csv_and_errors(story):
    vend = story[0]
    client = APIClient()
    client.force_authenticate(vend.world.admin_a)
    url = "/api/vending/reports/vat/"
    with override_settings(TIME_ZONE="Africa/Johannesburg"):
        body = client.get(url, {"from": "2025-05-01", "to": "2025-06-30"}).json()
        csv_text = client.get(url, {"from": "2025-05-01", "to": "2025-06-30", "as": "csv"})
    assert body["time_zone"] == "Africa/Johannesburg" and body["from"] == "2025-05-01"
    assert body["rows"] == [{
        "currency": "ZAR", "sales_net": "130.40", "sales_tax": "19.56", "reversed_net": "86.80",
        "reversed_tax": "13.02", "debt_net": "20.00", "debt_tax": "3.00", "adjusted_net": "0.00",
        "adjusted_tax": "0.00", "taxable_supplies": "63.60", "output_tax": "9.54",
    }]  # fmt: skip
    assert csv_text["Content-Type"].startswith("text/csv")
    assert list(csv.reader(StringIO(csv_text.content.decode())))[1][-1] == "9.54"
    assert client.get(url, {"from": "2025-06-30", "to": "2025-05-01"}).status_code == 400
    assert client.get(url, {"from": "May"}).status_code == 400
    assert client.get("/api/vending/reports/nothing/").status_code == 404
    other = APIClient()
    other.force_authenticate(vend.world.operator_b)
    assert other.get(url, {"from": "2025-05-01", "to": "2025-06-30"}).json()["rows"] == []
    customer = APIClient()
    customer.force_authenticate(vend.world.customer)
    assert customer.get(url).status_code == 403


def test_csv_cells_are_never_formulas(story):
    vend = story[0]
    vend.account_a.customer.name = '=HYPERLINK("http://x")'
    vend.account_a.customer.save()
    client = Client()
    client.force_login(vend.world.admin_a)
    with override_settings(TIME_ZONE="Africa/Johannesburg"):
        response = client.get("/vending/reports/", {"csv": "remainders", "from": "2025-05-01",
                                                    "to": "2025-05-31"})  # fmt: skip
    rows = list(csv.reader(StringIO(response.content.decode())))
    assert rows[1][2] == '\'=HYPERLINK("http://x")'
