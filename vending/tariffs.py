"""Pricing a sale: what a payment buys, charged exactly for what the token credits.

Rounding rules (all Decimal, reproducible):

1. Money is rounded to 0.01 with ROUND_HALF_UP, except the two caps below, which are
   rounded DOWN so a policy share is never exceeded.
2. The payment is split in this order (the tariff's policy, `Policy`):

   a. **Fixed charge.** The month's fixed charge (tax excluded) and its tax are taken
      first. Under the default policy at most ``100 - min_energy_percent`` % of the payment
      goes to fixed charge and debt together; the part of the fixed charge the payment
      cannot cover becomes debt (with its tax, `fixed_charge_debt`). Under the "refuse"
      policy the whole fixed charge is taken and a payment that cannot cover it is refused.
   b. **Debt recovery**: ``min(debt, round(paid * debt_recovery_percent / 100), room)``
      where `room` is what the minimum energy share leaves after the fixed charge.
   c. **Energy.** What is left, plus the money carried forward on the account from earlier
      sales (`credit_used`), buys energy, tax included: the exact kWh are computed block by
      block from the kWh already bought this month, rounded DOWN to 0.1 kWh and then to the
      largest value an STS token can carry (0.1 kWh steps up to 1638.3 kWh, then 1 kWh,
      10 kWh, 100 kWh: `representable_at_most`).

3. The customer is charged for exactly the kWh the token credits: each block line is
   ``round(kWh in the block * price)``, the energy charge is the sum of the lines, and the
   tax is ``round(fixed * tax%) + round(energy * tax%)``. The money not spent on energy
   (the uncredited remainder, never taxed because nothing was supplied for it) is carried
   forward on the account (`credit_carried`) and spent on the next purchase.

So ``amount_paid + credit_used == debt_recovered + fixed_charge + tax + energy_charge +
credit_carried`` to the cent, on every sale.
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


def money_down(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_DOWN)


def tax_on(net: Decimal, tax_percent: Decimal) -> Decimal:
    return money(net * tax_percent / HUNDRED)


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
class Policy:
    """How a tariff treats fixed charges and debt (defaults: the fields' defaults on Tariff)."""

    min_energy_percent: Decimal = Decimal("50")
    fixed_charge_shortfall_to_debt: bool = True

    @classmethod
    def of(cls, tariff) -> Policy:
        return cls(
            min_energy_percent=Decimal(tariff.min_energy_percent),
            fixed_charge_shortfall_to_debt=tariff.fixed_charge_shortfall_to_debt,
        )


@dataclass(frozen=True)
class Quote:
    """What a payment buys and where each cent goes."""

    amount_paid: Decimal
    credit_used: Decimal  # carried forward from earlier sales, spent on this one
    debt_recovered: Decimal
    fixed_charge: Decimal  # net, taken from this payment
    fixed_tax: Decimal  # the tax on `fixed_charge` (the rest of `tax` is on the energy)
    tax: Decimal
    energy_charge: Decimal  # net, exactly the price of `energy_kwh`
    credit_carried: Decimal  # the uncredited remainder, carried forward on the account
    energy_kwh: Decimal  # credited, as carried by the token
    computed_kwh: Decimal  # what the money would buy, before the token's resolution
    fixed_charge_debt: Decimal = ZERO  # gross part of the fixed charge left as debt
    fixed_charge_debt_tax: Decimal = ZERO  # the tax included in `fixed_charge_debt`
    energy_debt: Decimal = ZERO  # an existing token's energy the money did not cover
    lines: list[dict] = field(default_factory=list)

    def breakdown(self) -> dict:
        return {
            "amount_paid": str(self.amount_paid),
            "credit_used": str(self.credit_used),
            "debt_recovered": str(self.debt_recovered),
            "fixed_charge": str(self.fixed_charge),
            "fixed_charge_debt": str(self.fixed_charge_debt),
            "tax": str(self.tax),
            "fixed_tax": str(self.fixed_tax),
            "energy_charge": str(self.energy_charge),
            "energy_kwh": str(self.energy_kwh),
            "uncredited_kwh": str(self.computed_kwh - self.energy_kwh),
            "credit_carried": str(self.credit_carried),
            "energy_debt": str(self.energy_debt),
            "blocks": self.lines,
        }


def blocks_of(tariff) -> list[Block]:
    if tariff.kind == TariffKind.FLAT:
        return [Block(None, tariff.price_per_kwh)]
    blocks = [Block(b.up_to_kwh, b.price_per_kwh) for b in tariff.blocks.all()]
    blocks.sort(key=lambda b: (b.up_to_kwh is None, b.up_to_kwh or ZERO))
    if not blocks or blocks[-1].up_to_kwh is not None:
        raise SaleRefused(f"tariff {tariff.code} has no open-ended last block")
    if any(b.price_per_kwh <= 0 for b in blocks):
        raise SaleRefused("a tariff block has no price")
    return blocks


def _walk(blocks: list[Block], position: Decimal):
    """(block, kWh room left in it) from `position` on; the last block has room None."""
    for block in blocks:
        upper = block.up_to_kwh
        if upper is not None and position >= upper:
            continue
        yield block, (None if upper is None else upper - position)


def energy_for(money_for_energy: Decimal, blocks: list[Block], already_kwh: Decimal) -> Decimal:
    """Exact kWh bought by `money_for_energy` (net), walking the blocks from `already_kwh` on."""
    remaining, total = money_for_energy, ZERO
    for block, room in _walk(blocks, already_kwh):
        affordable = remaining / block.price_per_kwh
        kwh = affordable if room is None else min(room, affordable)
        total += kwh
        remaining -= kwh * block.price_per_kwh
        if remaining <= 0:
            break
    return total


def energy_cost(kwh: Decimal, blocks: list[Block], already_kwh: Decimal):
    """(net charge, lines) of exactly `kwh` bought from `already_kwh` on; lines add up."""
    left, lines = kwh, []
    for block, room in _walk(blocks, already_kwh):
        if left <= 0:
            break
        take = left if room is None else min(room, left)
        lines.append({
            "up_to_kwh": None if block.up_to_kwh is None else str(block.up_to_kwh),
            "price_per_kwh": str(block.price_per_kwh),
            "kwh": str(take), "money": str(money(take * block.price_per_kwh)),
        })  # fmt: skip
        left -= take
    return sum((Decimal(line["money"]) for line in lines), ZERO), lines


def _credited_tenths(kwh: Decimal) -> int:
    tenths = int(kwh.quantize(TENTH, rounding=ROUND_DOWN) * 10)
    return representable_at_most(tenths) if tenths > 0 else 0


def quote(
    tariff,
    amount_paid: Decimal,
    *,
    debt_balance: Decimal = ZERO,
    credit_balance: Decimal = ZERO,
    fixed_charge_due: bool = False,
    kwh_bought_this_month: Decimal = ZERO,
    policy: Policy | None = None,
    credited_kwh: Decimal | None = None,
) -> Quote:
    """Price a payment on `tariff` (see the module docstring for every rule).

    `credited_kwh` prices a token that already exists (an offline sale): those kWh are
    charged whatever the money left for energy; what it does not cover is `energy_debt`.
    """
    policy = policy or Policy.of(tariff)
    paid = Decimal(amount_paid)
    if paid != money(paid) or paid <= 0:
        raise SaleRefused("the amount must be positive, in whole cents")
    paid, credit_in, rate = money(paid), Decimal(credit_balance), tariff.tax_percent
    # (a) the fixed charge, within the share the policy leaves for charges and debt
    room = money_down(paid * (HUNDRED - policy.min_energy_percent) / HUNDRED)
    fixed_due = money(tariff.fixed_charge_monthly) if fixed_charge_due else ZERO
    fixed, fixed_debt, fixed_debt_tax = fixed_due, ZERO, ZERO
    if fixed_due and policy.fixed_charge_shortfall_to_debt:
        if fixed_due + tax_on(fixed_due, rate) > room:
            fixed = money_down(room / (1 + rate / HUNDRED))
            while fixed > 0 and fixed + tax_on(fixed, rate) > room:
                fixed -= CENT
            fixed_debt_tax = tax_on(fixed_due, rate) - tax_on(fixed, rate)
            fixed_debt = fixed_due - fixed + fixed_debt_tax
    fixed_tax = tax_on(fixed, rate)
    room = max(ZERO, room - fixed - fixed_tax)
    # (b) debt recovery
    debt = min(Decimal(debt_balance), money(paid * tariff.debt_recovery_percent / HUNDRED), room)
    # (c) energy, charged for exactly what the token credits
    for_energy = paid - debt - fixed - fixed_tax + credit_in
    blocks = blocks_of(tariff)
    if credited_kwh is not None:
        return _settle(tariff, Decimal(credited_kwh), for_energy, blocks, kwh_bought_this_month,
                       paid=paid, credit_in=credit_in, debt=debt, fixed=fixed,
                       fixed_tax=fixed_tax, fixed_debt=fixed_debt,
                       fixed_debt_tax=fixed_debt_tax)  # fmt: skip
    if for_energy <= 0:
        raise SaleRefused(
            f"{tariff.currency} {paid} does not cover the monthly fixed charge "
            f"({fixed_due}) plus tax and debt recovery"
        )
    computed = energy_for(for_energy / (1 + rate / HUNDRED), blocks, kwh_bought_this_month)
    tenths = _credited_tenths(computed)
    while True:
        if tenths <= 0:
            raise SaleRefused(f"{tariff.currency} {paid} buys less than 0.1 kWh")
        credited = Decimal(tenths).scaleb(-1)
        energy, lines = energy_cost(credited, blocks, kwh_bought_this_month)
        energy_tax = tax_on(energy, rate)
        if energy + energy_tax <= for_energy:
            break
        # Lines rounded up by a cent can exceed the money: one representable step less.
        tenths = representable_at_most(tenths - 1)
    return Quote(
        amount_paid=paid, credit_used=credit_in, debt_recovered=debt, fixed_charge=fixed,
        fixed_tax=fixed_tax, tax=fixed_tax + energy_tax, energy_charge=energy,
        credit_carried=for_energy - energy - energy_tax, energy_kwh=credited,
        computed_kwh=computed.quantize(Decimal("0.0001"), rounding=ROUND_DOWN),
        fixed_charge_debt=fixed_debt, fixed_charge_debt_tax=fixed_debt_tax, lines=lines,
    )  # fmt: skip


def _settle(tariff, kwh: Decimal, for_energy: Decimal, blocks, position, **split) -> Quote:
    """The quote of a token that already credits `kwh`: charged exactly, never refused."""
    tenths = kwh * 10
    if kwh <= 0 or tenths != tenths.to_integral_value() or tenths > MAX_UNITS:
        raise SaleRefused(f"{kwh} kWh is not an amount a credit token carries")
    if representable_at_most(int(tenths)) != tenths:
        raise SaleRefused(f"{kwh} kWh is not an amount a credit token carries")
    energy, lines = energy_cost(kwh, blocks, position)
    energy_tax = tax_on(energy, tariff.tax_percent)
    left = for_energy - energy - energy_tax
    return Quote(
        amount_paid=split["paid"], credit_used=split["credit_in"],
        debt_recovered=split["debt"], fixed_charge=split["fixed"],
        fixed_tax=split["fixed_tax"], tax=split["fixed_tax"] + energy_tax,
        energy_charge=energy, credit_carried=max(left, ZERO), energy_kwh=kwh,
        computed_kwh=kwh, fixed_charge_debt=split["fixed_debt"],
        fixed_charge_debt_tax=split["fixed_debt_tax"], energy_debt=max(-left, ZERO),
        lines=lines,
    )  # fmt: skip
