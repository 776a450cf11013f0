"""Pricing a sale: how much energy a payment buys, with a breakdown that adds up exactly.

Rounding rules (all Decimal, reproducible):

1. Money is rounded to 0.01 with ROUND_HALF_UP, at each step below.
2. Debt recovery: ``min(debt, round(paid * debt_recovery_percent / 100))``.
3. Tax is included in what the customer pays: ``net = round((paid - debt) / (1 + tax/100))``
   and ``tax = paid - debt - net``, so the lines always add up to the payment.
4. The monthly fixed charge (tax excluded) is taken from ``net`` on the first purchase of
   the calendar month (local time); what is left buys energy.
5. Energy is computed exactly (block by block for block tariffs, from the kWh already bought
   this month) and rounded DOWN to 0.1 kWh, so the customer is never credited more than
   was paid for.
6. STS tokens carry only some values (0.1 kWh steps up to 1638.3 kWh, then 1 kWh, 10 kWh,
   ...) and the engine rounds *up* to the next one. A sale therefore credits the largest
   representable value that is <= the computed energy (``representable_at_most``), and the
   token's amount is exactly that value. The money of the fraction not credited stays in
   ``energy_charge`` and is shown as ``uncredited_kwh`` in the breakdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from .choices import TariffKind
from .errors import SaleRefused
from .sts.amount import MAX_UNITS, decode_units, encode_units

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
HUNDRED = Decimal("100")
ZERO = Decimal("0")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def representable_at_most(tenths: int) -> int:
    """The largest amount (in 0.1 kWh) an STS token can carry that is <= ``tenths``."""
    if tenths > MAX_UNITS:
        raise SaleRefused(f"a token carries at most {Decimal(MAX_UNITS) / 10} kWh; pay less")
    field16 = encode_units(tenths)
    if decode_units(field16) > tenths:
        field16 -= 1  # the encoding is monotonic: one field value lower is the previous value
    return decode_units(field16)


@dataclass(frozen=True)
class Block:
    """A price band: kWh bought this month up to `up_to_kwh` (None: no limit)."""

    up_to_kwh: Decimal | None
    price_per_kwh: Decimal


@dataclass(frozen=True)
class Quote:
    """What a payment buys and where each cent goes."""

    amount_paid: Decimal
    debt_recovered: Decimal
    tax: Decimal
    fixed_charge: Decimal
    energy_charge: Decimal
    energy_kwh: Decimal  # credited, as carried by the token
    computed_kwh: Decimal  # rounded down to 0.1 kWh, before the token's representable values
    lines: list[dict] = field(default_factory=list)

    def breakdown(self) -> dict:
        return {
            "amount_paid": str(self.amount_paid),
            "debt_recovered": str(self.debt_recovered),
            "tax": str(self.tax),
            "fixed_charge": str(self.fixed_charge),
            "energy_charge": str(self.energy_charge),
            "energy_kwh": str(self.energy_kwh),
            "uncredited_kwh": str(self.computed_kwh - self.energy_kwh),
            "blocks": self.lines,
        }


def blocks_of(tariff) -> list[Block]:
    if tariff.kind == TariffKind.FLAT:
        return [Block(None, tariff.price_per_kwh)]
    blocks = [Block(b.up_to_kwh, b.price_per_kwh) for b in tariff.blocks.all()]
    blocks.sort(key=lambda b: (b.up_to_kwh is None, b.up_to_kwh or ZERO))
    if not blocks or blocks[-1].up_to_kwh is not None:
        raise SaleRefused(f"tariff {tariff.code} has no open-ended last block")
    return blocks


def energy_for(money_for_energy: Decimal, blocks: list[Block], already_kwh: Decimal):
    """Exact kWh bought by `money_for_energy`, walking the blocks from `already_kwh` on."""
    remaining = money_for_energy
    position = already_kwh
    total = ZERO
    lines = []
    for block in blocks:
        upper = block.up_to_kwh
        if upper is not None and position >= upper:
            continue
        room = None if upper is None else upper - position
        if block.price_per_kwh <= 0:
            raise SaleRefused("a tariff block has no price")
        affordable = remaining / block.price_per_kwh
        kwh = affordable if room is None else min(room, affordable)
        cost = remaining if kwh == affordable else kwh * block.price_per_kwh
        if kwh > 0:
            lines.append(
                {"up_to_kwh": None if upper is None else str(upper),
                 "price_per_kwh": str(block.price_per_kwh),
                 "kwh": str(kwh.quantize(Decimal("0.0001"), rounding=ROUND_DOWN)),
                 "money": str(money(cost))}
            )  # fmt: skip
        total += kwh
        position += kwh
        remaining -= cost
        if remaining <= 0:
            break
    return total, lines


def quote(
    tariff,
    amount_paid: Decimal,
    *,
    debt_balance: Decimal = ZERO,
    fixed_charge_due: bool = False,
    kwh_bought_this_month: Decimal = ZERO,
) -> Quote:
    """Price a payment on `tariff` (see the module docstring for every rounding rule)."""
    paid = Decimal(amount_paid)
    if paid != money(paid) or paid <= 0:
        raise SaleRefused("the amount must be positive, in whole cents")
    paid = money(paid)
    debt = money(min(debt_balance, paid * tariff.debt_recovery_percent / HUNDRED))
    after_debt = paid - debt
    net = money(after_debt / (1 + tariff.tax_percent / HUNDRED))
    tax = after_debt - net
    fixed = money(tariff.fixed_charge_monthly if fixed_charge_due else ZERO)
    for_energy = net - fixed
    if for_energy <= 0:
        raise SaleRefused(
            f"{tariff.currency} {paid} does not cover the monthly fixed charge "
            f"({fixed}) plus tax and debt recovery"
        )
    exact, lines = energy_for(for_energy, blocks_of(tariff), kwh_bought_this_month)
    computed = exact.quantize(TENTH, rounding=ROUND_DOWN)
    tenths = int(computed * 10)
    credited = Decimal(representable_at_most(tenths)).scaleb(-1) if tenths else ZERO
    if credited <= 0:
        raise SaleRefused(f"{tariff.currency} {paid} buys less than 0.1 kWh")
    return Quote(
        amount_paid=paid, debt_recovered=debt, tax=tax, fixed_charge=fixed,
        energy_charge=for_energy, energy_kwh=credited, computed_kwh=computed, lines=lines,
    )  # fmt: skip
