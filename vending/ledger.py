"""An account's debt and carried-forward money: every change is an `AccountMovement` row.

The balances live on `PrepaidAccount` (changed with `F()` under the account's row lock, so
concurrent sales serialise) and each change leaves a movement with the balances after it,
which is what the account history and the debt / remainder reports read.

Fixed charges are billed per calendar month of the utility's zone. `fixed_charge_months`
says which months a sale at `now` must settle: the current month is charged on the sale;
under `accrue_missed_fixed_charges`, months since the last billed one in which nothing was
bought are owed as debt (fixed charge plus tax) before the sale is priced.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db.models import F
from django.utils import timezone

from .choices import SaleStatus
from .models import AccountMovement, PrepaidAccount, Sale
from .tariffs import tax_on

ZERO = Decimal("0")


def month_start(now: datetime) -> datetime:
    """Start of the calendar month of `now` in the utility's time zone (fixed charges, blocks)."""
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_of(now: datetime) -> date:
    return month_start(now).date()


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_end(now: datetime) -> datetime:
    """Start of the next calendar month of `now` (local), as an aware datetime."""
    following = next_month(month_of(now))
    return datetime(following.year, following.month, 1, tzinfo=timezone.get_current_timezone())


def post(
    account: PrepaidAccount,
    kind: str,
    *,
    debt: Decimal = ZERO,
    credit: Decimal = ZERO,
    tax: Decimal = ZERO,
    now: datetime,
    acting_user=None,
    sale: Sale | None = None,
    reversal=None,
    period: date | None = None,
    note: str = "",
) -> AccountMovement | None:
    """Change the balances and record why; the caller holds the account lock."""
    if not debt and not credit:
        return None
    PrepaidAccount.objects.filter(pk=account.pk).update(
        debt_balance=F("debt_balance") + debt, credit_balance=F("credit_balance") + credit
    )
    account.refresh_from_db(fields=["debt_balance", "credit_balance"])
    return AccountMovement.objects.create(
        organisation=account.organisation, account=account, kind=kind, debt_change=debt,
        credit_change=credit, debt_after=account.debt_balance,
        credit_after=account.credit_balance, tax=tax, period=period, sale=sale,
        reversal=reversal, created_by=acting_user, note=note[:300], created_at=now,
    )  # fmt: skip


def fixed_charge_due(account: PrepaidAccount, now: datetime) -> tuple[list[date], bool]:
    """(missed months owed as debt, whether this month's charge is due on a sale at `now`)."""
    tariff = account.tariff
    if tariff.fixed_charge_monthly <= 0:
        return [], False
    current = month_of(now)
    billed_until = account.fixed_charge_billed_until
    if billed_until is None:
        # No sale under a fixed charge yet (or sales made before this was tracked).
        collected = Sale.objects.filter(
            account=account, status=SaleStatus.COMPLETED, fixed_charge__gt=0,
            created_at__gte=month_start(now), created_at__lt=month_end(now),
        ).exists()  # fmt: skip
        return [], not collected
    if current < billed_until:
        return [], False  # an offline sale of a month already billed
    missed = []
    month = billed_until
    while month < current and tariff.accrue_missed_fixed_charges:
        missed.append(month)
        month = next_month(month)
    return missed, True


def accrue_fixed_charge(account: PrepaidAccount, month: date, *, kind: str, now, **extra):
    """Owe one month's fixed charge (plus its tax) as debt."""
    fixed = account.tariff.fixed_charge_monthly
    tax = tax_on(fixed, account.tariff.tax_percent)
    return post(account, kind, debt=fixed + tax, tax=tax, now=now, period=month, **extra)
