"""Vending operations: every state change is one of these functions, atomic and audited.

Money, TIDs and debt change under a row lock on the prepaid account
(`engine.locked_account`), so concurrent sales to one meter serialise there. A sale that
cannot complete raises a `VendingError` after its transaction rolled back: no sale, no
token, no TID used, no debt recovered; the refusal itself is written to the activity log
outside that transaction.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from accounts import audit
from accounts.actions import ensure_in_scope, record_denied
from accounts.choices import Outcome
from accounts.roles import PAYMENT_INTEGRATION
from accounts.scoping import org_within_scope

from . import engine, ledger, tariffs
from .choices import (
    MovementKind,
    SaleChannel,
    SaleStatus,
    ShiftStatus,
    StationKind,
    TokenPurpose,
)
from .errors import (
    IdempotencyConflict,
    NotASeller,
    SaleRefused,
    VendingError,
    VendingUnavailable,
)
from .models import (
    ManagementOrder,
    PrepaidAccount,
    Sale,
    SaleReversal,
    Shift,
    Token,
    VendingStation,
)
from .scoping import is_supervisor, may_issue_management_tokens
from .sts.errors import StsError
from .sts.tid import tid_from_datetime
from .sts.tokens import (
    REGISTER_ALL,
    TokenKind,
    decode_token,
    encode_clear_credit,
    encode_clear_tamper,
    encode_credit,
    encode_key_change,
    encode_max_power,
)

ZERO = Decimal("0")


def record_failure(action: str, *, acting_user, obj=None, error: Exception) -> None:
    """The activity row of an operation that did not happen (written outside its transaction)."""
    denied = isinstance(error, (PermissionDenied, NotASeller))
    outcome = Outcome.DENIED if denied else Outcome.FAILED
    audit.record(action, user=acting_user, obj=obj, outcome=outcome, detail=str(error))


def kwh_bought_in_month(account: PrepaidAccount, now: datetime, *, excluding=None) -> Decimal:
    """kWh bought this month up to `now`: the block position of a sale at `now`.

    Completed sales count, and so do reversed sales whose token was entered: the meter
    holds that energy, so the month's blocks do too.
    """
    sales = Sale.objects.filter(
        Q(status=SaleStatus.COMPLETED) | Q(reversal__token_entered=True), account=account,
        created_at__gte=ledger.month_start(now), created_at__lte=now,
    )  # fmt: skip
    if excluding is not None:
        sales = sales.exclude(pk=excluding.pk)
    return sales.aggregate(total=Sum("energy_kwh"))["total"] or ZERO


# --- shifts -----------------------------------------------------------------------------


def open_shift(
    station: VendingStation, *, acting_user, opening_float: Decimal = ZERO, now=None
) -> Shift:
    """Open the clerk's shift at a station; a clerk has at most one open shift."""
    if not station.active:
        raise SaleRefused(f"station {station.code} is closed")
    if station.kind != StationKind.COUNTER:
        raise SaleRefused(
            f"station {station.code} is a payment system's: it pays through the API, no shifts"
        )
    if not is_supervisor(acting_user) and not station.clerks.filter(pk=acting_user.pk).exists():
        raise PermissionDenied(f"you are not a clerk of station {station.code}")
    if Shift.objects.filter(clerk=acting_user, status=ShiftStatus.OPEN).exists():
        raise SaleRefused("you already have an open shift; close it first")
    try:
        with transaction.atomic():
            shift = Shift.objects.create(
                organisation=station.organisation, station=station, clerk=acting_user,
                opening_float=Decimal(opening_float), opened_at=now or timezone.now(),
            )  # fmt: skip
            ensure_in_scope(shift, acting_user, "add")
            changes = {"station": station.code, "opening_float": str(opening_float)}
            audit.record("open_shift", user=acting_user, obj=shift, changes=changes)
    except IntegrityError:
        raise SaleRefused("you already have an open shift; close it first") from None
    return shift


def shift_takings(shift: Shift) -> Decimal:
    """Cash the drawer took: every sale of the shift (a later reversal does not undo it)."""
    return shift.sales.aggregate(total=Sum("amount_paid"))["total"] or ZERO


def shift_refunds(shift: Shift) -> Decimal:
    """Cash the drawer paid out: refunds of reversals recorded in this shift."""
    return shift.refunds.aggregate(total=Sum("refund_amount"))["total"] or ZERO


def expected_cash(shift: Shift) -> Decimal:
    return shift.opening_float + shift_takings(shift) - shift_refunds(shift)


def close_shift(
    shift: Shift, *, cash_counted: Decimal, acting_user, note: str = "", now=None
) -> Shift:
    """Close a shift: expected cash = float + sales taken - refunds paid; the variance.

    A closed shift never changes: refunds are recorded only in open shifts.
    """
    with transaction.atomic():
        shift = Shift.objects.select_for_update().get(pk=shift.pk)
        if shift.status != ShiftStatus.OPEN:
            raise SaleRefused("this shift is already closed")
        if shift.clerk_id != acting_user.pk and not is_supervisor(acting_user):
            raise PermissionDenied("only the clerk or a supervisor closes a shift")
        expected = expected_cash(shift)
        shift.cash_counted = Decimal(cash_counted)
        shift.expected_cash = expected
        shift.variance = shift.cash_counted - expected
        shift.status = ShiftStatus.CLOSED
        shift.closed_at = now or timezone.now()
        shift.note = note
        shift.save()
        audit.record("close_shift", user=acting_user, obj=shift, changes={
            "expected_cash": str(expected), "cash_counted": str(shift.cash_counted),
            "variance": str(shift.variance)})  # fmt: skip
    return shift


# --- sales ------------------------------------------------------------------------------


def _price(account: PrepaidAccount, amount: Decimal, now: datetime, *, acting_user,
           booked_at: datetime | None = None, credited_kwh: Decimal | None = None):  # fmt: skip
    """Owe the fixed charges of months without purchase, then price a payment made at `now`.

    The caller holds the account lock; a refused quote rolls the accruals back with it.
    Movements are dated `booked_at` (an offline sale is booked when it is uploaded).
    """
    missed, fixed_due = ledger.fixed_charge_due(account, now)
    for month in missed:
        ledger.accrue_fixed_charge(
            account, month, kind=MovementKind.FIXED_ARREARS, now=booked_at or now,
            acting_user=acting_user, note=f"fixed charge {month:%Y-%m}: no purchase that month",
        )  # fmt: skip
    quote = tariffs.quote(
        account.tariff, amount, debt_balance=account.debt_balance,
        credit_balance=account.credit_balance, fixed_charge_due=fixed_due,
        kwh_bought_this_month=kwh_bought_in_month(account, now), credited_kwh=credited_kwh,
    )  # fmt: skip
    return quote, fixed_due


def quote_fields(quote: tariffs.Quote) -> dict:
    """The money columns of a Sale, from its quote."""
    return {
        "amount_paid": quote.amount_paid, "credit_used": quote.credit_used,
        "debt_recovered": quote.debt_recovered, "fixed_charge": quote.fixed_charge,
        "tax": quote.tax, "energy_charge": quote.energy_charge,
        "credit_carried": quote.credit_carried, "energy_kwh": quote.energy_kwh,
        "breakdown": quote.breakdown(),
    }  # fmt: skip


def _book(account, sale: Sale, quote: tariffs.Quote, fixed_due: bool, *, now, acting_user,
          booked_at: datetime | None = None):  # fmt: skip
    """A sale's effect on the account: debt recovered, money carried, fixed charge billed."""
    month = ledger.month_of(now)
    common = {"sale": sale, "now": booked_at or now, "acting_user": acting_user}
    if quote.fixed_charge_debt:
        ledger.post(
            account, MovementKind.FIXED_SHORTFALL, debt=quote.fixed_charge_debt,
            tax=quote.fixed_charge_debt_tax, period=month,
            note=f"fixed charge {month:%Y-%m}: part not covered", **common,
        )  # fmt: skip
    ledger.post(
        account, MovementKind.SALE, debt=quote.energy_debt - quote.debt_recovered,
        credit=quote.credit_carried - quote.credit_used,
        note="offline token's energy not covered by its payment" if quote.energy_debt else "",
        **common,
    )  # fmt: skip
    if fixed_due:
        PrepaidAccount.objects.filter(pk=account.pk).update(
            fixed_charge_billed_until=ledger.next_month(month)
        )


def _store_credit_token(account, sale: Sale, sts, tid: int) -> Token:
    """Keep a sale's credit token so a reprint shows exactly the same digits."""
    return Token.objects.create(
        organisation=account.organisation, account=account, meter=account.meter, sale=sale,
        purpose=TokenPurpose.CREDIT, kind=sts.kind.value, digits=sts.digits,
        base_date=account.base_date, tid=tid, amount_kwh=sts.amount, issued_at=sale.created_at,
    )  # fmt: skip


def _sell_locked(
    account: PrepaidAccount,
    amount: Decimal,
    *,
    acting_user,
    channel: str,
    shift: Shift | None,
    currency: str | None,
    payment_reference: str,
    idempotency_key: str | None,
    fingerprint: str,
    now: datetime,
    station: VendingStation | None = None,
) -> Sale:
    """The sale itself; the caller holds the account lock inside a transaction.

    A counter sale is made at its shift's station, a payment at the payment system's own.
    """
    if not account.active:
        raise SaleRefused(f"prepaid account {account.meter_number} is closed")
    tariff = account.tariff
    if not tariff.active:
        raise SaleRefused(f"tariff {tariff.code} is withdrawn; move the account to another")
    if currency and currency != tariff.currency:
        raise SaleRefused(f"this account is sold in {tariff.currency}, not {currency}")
    if channel == SaleChannel.COUNTER:
        # Re-read: the caller's shift object may be stale (closed meanwhile).
        shift = Shift.objects.select_related("station").filter(pk=getattr(shift, "pk", None))
        shift = shift.first()
        if shift is None or shift.status != ShiftStatus.OPEN or shift.clerk_id != acting_user.pk:
            raise SaleRefused("open a shift at your station before selling")
        station = shift.station
        if not station.active or not (
            is_supervisor(acting_user) or station.clerks.filter(pk=acting_user.pk).exists()
        ):
            raise SaleRefused(
                f"you no longer sell at station {station.code}: close this shift and open one "
                "at your station"
            )
    quote, fixed_due = _price(account, Decimal(amount), now, acting_user=acting_user)
    key = engine.decoder_key(account)
    tid = engine.allocate_tid(account, now)
    try:
        sts = encode_credit(
            key, TokenKind.CREDIT_ELECTRICITY, quote.energy_kwh, issued_at=tid,
            base_date=account.base_date,
        )  # fmt: skip
    except StsError as exc:
        raise VendingUnavailable(f"the token engine refused: {exc}") from None
    if sts.amount != quote.energy_kwh:  # representable_at_most guarantees this
        raise VendingUnavailable("token amount differs from the amount paid for")
    sale = Sale.objects.create(
        organisation=account.organisation, account=account, station=station, shift=shift,
        sold_by=acting_user, channel=channel, tariff=tariff, currency=tariff.currency,
        **quote_fields(quote), payment_reference=payment_reference,
        idempotency_key=idempotency_key, request_fingerprint=fingerprint, created_at=now,
    )  # fmt: skip
    _store_credit_token(account, sale, sts, tid)
    _book(account, sale, quote, fixed_due, now=now, acting_user=acting_user)
    if not acting_user.has_perm("vending.add_sale") or not org_within_scope(
        acting_user, account.organisation, "add"
    ):
        raise PermissionDenied("the account is outside your organisation's scope")
    ensure_in_scope(sale, acting_user, "add")  # clerks and payment systems: own station only
    changes = {
        "account": account.meter_number,
        "amount_paid": str(quote.amount_paid),
        "energy_kwh": str(quote.energy_kwh),
        "credit_carried": str(quote.credit_carried),
        "tid": tid,
        "channel": channel,
        "station": station.code if station else "",
        "payment_reference": payment_reference,
    }
    audit.record("sell", user=acting_user, obj=sale, changes=changes)
    if settings.AMI_PREPAID_RELAY:  # a top-up may reconnect (loadcontrol/prepaid.py)
        transaction.on_commit(lambda: enqueue_prepaid_check(account.pk))
    return sale


def enqueue_prepaid_check(account_id: int) -> None:
    """loadcontrol's prepaid link looks at the account again (queued by name: vending imports
    no load control)."""
    current_app.signature("loadcontrol.prepaid_check", args=(account_id,)).apply_async()


def add_payment_system(organisation, *, code: str, name: str, acting_user=None):
    """A third-party payment system: its integration station and its own identity.

    Returns (station, user, password); the password is shown once and gets API tokens
    (`POST /api/token/`). The identity has the payment-integration role and sells only at
    this station; nobody else is a member of it.
    """
    password = secrets.token_urlsafe(24)
    with transaction.atomic():
        station = VendingStation.objects.create(
            organisation=organisation, code=code, name=name, kind=StationKind.INTEGRATION,
            location="third-party payment system (API)",
        )  # fmt: skip
        user = get_user_model().objects.create_user(
            f"pay-{code.lower()}", password=password, organisation=organisation
        )
        user.groups.set(Group.objects.filter(name=PAYMENT_INTEGRATION))
        station.clerks.add(user)
        audit.record("add_payment_system", user=acting_user, obj=station,
                     changes={"station": code, "identity": user.get_username()})  # fmt: skip
    return station, user, password


def integration_station(acting_user, account: PrepaidAccount) -> VendingStation:
    """The payment system's own station for a payment to `account`, or NotASeller.

    Third-party payments come only from an identity bound to an active integration station
    whose organisation covers the account's; clerks sell at the counter in an open shift.
    """
    stations = VendingStation.objects.filter(
        kind=StationKind.INTEGRATION, active=True, clerks=acting_user
    ).select_related("organisation")
    for station in stations:
        if account.organisation.path.startswith(station.organisation.path):
            return station
    raise NotASeller(
        "third-party payments come from a payment system's own identity, bound to an active "
        "integration station of the account's organisation; clerks sell at the counter in an "
        "open shift (POST /api/vending/sales/)"
    )


def sell(
    account: PrepaidAccount,
    amount: Decimal,
    *,
    acting_user,
    shift: Shift,
    currency: str | None = None,
    payment_reference: str = "",
    now: datetime | None = None,
) -> Sale:
    """A counter sale by a clerk in an open shift: one token, one receipt."""
    try:
        with transaction.atomic():
            locked = engine.locked_account(account.pk)
            return _sell_locked(
                locked, amount, acting_user=acting_user, channel=SaleChannel.COUNTER,
                shift=shift, currency=currency, payment_reference=payment_reference,
                idempotency_key=None, fingerprint="", now=now or timezone.now(),
            )  # fmt: skip
    except (VendingError, PermissionDenied) as exc:
        record_failure("sell", acting_user=acting_user, obj=account, error=exc)
        raise


def payment_fingerprint(account, amount, currency, payment_reference, acting_user) -> str:
    """What makes two payment requests "the same" for an idempotency key."""
    body = json.dumps(
        [account.pk, str(Decimal(amount)), currency, payment_reference, acting_user.pk]
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _replay(organisation_id: int, key: str, fingerprint: str) -> Sale | None:
    sale = Sale.objects.filter(organisation_id=organisation_id, idempotency_key=key).first()
    if sale is not None and sale.request_fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different payment")
    return sale


def pay(
    account: PrepaidAccount,
    amount: Decimal,
    *,
    currency: str,
    payment_reference: str,
    idempotency_key: str,
    acting_user,
    now: datetime | None = None,
) -> tuple[Sale, bool]:
    """A third-party payment, idempotent: (sale, created). The same key returns the same sale.

    Duplicates racing each other queue on the account lock and find the first one's sale
    when they get it; a duplicate on another account hits the unique (organisation,
    idempotency_key) constraint and is answered from the winner's row. A failed payment
    leaves nothing, so its key may be retried.
    """
    if not idempotency_key:
        raise SaleRefused("an Idempotency-Key is required")
    fingerprint = payment_fingerprint(account, amount, currency, payment_reference, acting_user)
    org_id = account.organisation_id
    try:
        station = integration_station(acting_user, account)
        found = _replay(org_id, idempotency_key, fingerprint)
        if found is not None:
            return found, False
        try:
            with transaction.atomic():
                locked = engine.locked_account(account.pk)
                found = _replay(org_id, idempotency_key, fingerprint)
                if found is not None:
                    return found, False
                sale = _sell_locked(
                    locked, amount, acting_user=acting_user, channel=SaleChannel.API,
                    shift=None, currency=currency, payment_reference=payment_reference,
                    idempotency_key=idempotency_key, fingerprint=fingerprint,
                    now=now or timezone.now(), station=station,
                )  # fmt: skip
                return sale, True
        except IntegrityError:
            found = _replay(org_id, idempotency_key, fingerprint)
            if found is None:
                raise
            return found, False
    except (VendingError, PermissionDenied) as exc:
        record_failure("pay", acting_user=acting_user, obj=account, error=exc)
        raise


def record_offline_sale(
    account: PrepaidAccount,
    *,
    station: VendingStation,
    amount: Decimal,
    currency: str,
    sold_at: datetime,
    tid: int,
    token: str,
    offline_reference: str,
    acting_user,
    payment_reference: str = "",
    now: datetime | None = None,
) -> tuple[Sale, bool]:
    """Record a sale a station made without the network: (sale, created).

    The station already gave the customer a token, so nothing is generated here; the
    upload is checked and recorded (docs/vending.md, "Offline sales"):

    * the time is not in the future, and its TID is within the meter key's range and not
      before the last key change of the meter (the token must decode with today's key);
    * the token decodes with the meter's decoder key to a credit token with that TID, the
      minute of `sold_at` or a later free minute within a day;
    * the TID is new for the meter and above every token the head-end issued to it before
      `sold_at` (a meter refuses a TID it has seen or an older one);
    * the same station and `offline_reference` again returns the first sale (an upload can
      be retried); with another payload it is a conflict.

    The sale is priced at its own time from the month's block position, charged for
    exactly the kWh its token credits, with the account's debt and carried money as they
    stand at upload; money the token's energy did not cover is owed as debt. Later sales of
    that month are re-priced into a debit, as a reversal re-prices them into a credit.
    """
    now = now or timezone.now()
    fingerprint = hashlib.sha256(json.dumps(
        [account.pk, str(Decimal(amount)), currency, sold_at.isoformat(), tid, token,
         payment_reference]).encode()).hexdigest()  # fmt: skip
    try:
        if not offline_reference.strip():
            raise SaleRefused("an offline sale needs the station's own reference")
        if station.kind != StationKind.COUNTER:
            raise SaleRefused(f"station {station.code} is a payment system's: it sells online")
        if not is_supervisor(acting_user) and not station.clerks.filter(pk=acting_user.pk).exists():
            raise PermissionDenied(f"you are not a clerk of station {station.code}")
        with transaction.atomic():
            locked = engine.locked_account(account.pk)
            found = Sale.objects.filter(station=station, offline_reference=offline_reference)
            found = found.first()
            if found is not None:
                if found.request_fingerprint != fingerprint:
                    raise IdempotencyConflict(
                        f"offline sale {offline_reference} of {station.code} was uploaded "
                        "with other figures"
                    )
                return found, False
            sale = _record_offline_locked(
                locked, station=station, amount=Decimal(amount), currency=currency,
                sold_at=sold_at, tid=tid, token=token, offline_reference=offline_reference,
                payment_reference=payment_reference, fingerprint=fingerprint,
                acting_user=acting_user, now=now,
            )  # fmt: skip
            return sale, True
    except (VendingError, PermissionDenied) as exc:
        record_failure("upload_offline_sale", acting_user=acting_user, obj=account, error=exc)
        raise


def _check_offline_token(account, *, sold_at, tid, token, now):
    """The decoded credit token, or why the upload is refused."""
    if sold_at > now:
        raise SaleRefused(f"the sale time {sold_at.isoformat()} is in the future")
    try:
        minute = tid_from_datetime(sold_at, account.base_date)
    except StsError as exc:
        raise SaleRefused(f"outside the meter key's TID range: {exc}") from None
    key_change = (
        ManagementOrder.objects.filter(
            account=account, purpose=TokenPurpose.KEY_CHANGE, created_at__gt=sold_at
        )
        .order_by("created_at")
        .first()
    )
    if key_change is not None:
        raise SaleRefused(
            f"the meter's key changed on {key_change.created_at:%Y-%m-%d %H:%M} UTC, after "
            "this sale: its token was made with the old key"
        )
    if not minute <= tid <= minute + 1440:
        raise SaleRefused(
            f"TID {tid} is not the minute of the sale ({minute}) or a later minute that day"
        )
    try:
        decoded = decode_token(token, engine.decoder_key(account))
    except StsError as exc:
        raise SaleRefused(f"the token does not decode with this meter's key: {exc}") from None
    if decoded.kind != TokenKind.CREDIT_ELECTRICITY:
        raise SaleRefused(f"the token is a {decoded.kind.value} token, not electricity credit")
    if decoded.tid != tid:
        raise SaleRefused(f"the token carries TID {decoded.tid}, not {tid}")
    tokens = Token.objects.filter(meter=account.meter, base_date=account.base_date)
    if tokens.filter(tid=tid).exists():
        raise SaleRefused(f"TID {tid} was already used for this meter")
    earlier = tokens.filter(issued_at__lte=sold_at, tid__gt=tid).order_by("-tid").first()
    if earlier is not None:
        raise SaleRefused(
            f"out of order: a token issued before this sale already has TID {earlier.tid}"
        )
    return decoded


def _record_offline_locked(account, *, station, amount, currency, sold_at, tid, token,
                           offline_reference, payment_reference, fingerprint, acting_user,
                           now) -> Sale:  # fmt: skip
    if not org_within_scope(acting_user, account.organisation, "add"):
        raise PermissionDenied("the account is outside your organisation's scope")
    if currency != account.tariff.currency:
        raise SaleRefused(f"this account is sold in {account.tariff.currency}, not {currency}")
    decoded = _check_offline_token(account, sold_at=sold_at, tid=tid, token=token, now=now)
    quote, fixed_due = _price(account, amount, sold_at, acting_user=acting_user, booked_at=now,
                              credited_kwh=decoded.amount)  # fmt: skip
    sale = Sale.objects.create(
        organisation=account.organisation, account=account, station=station, shift=None,
        sold_by=acting_user, channel=SaleChannel.OFFLINE, tariff=account.tariff,
        currency=account.tariff.currency, **quote_fields(quote),
        payment_reference=payment_reference, offline_reference=offline_reference,
        request_fingerprint=fingerprint, created_at=sold_at, recorded_at=now,
    )  # fmt: skip
    _store_credit_token(account, sale, decoded, tid)
    if tid > account.last_tid:  # later online tokens must stay above it
        PrepaidAccount.objects.filter(pk=account.pk).update(last_tid=tid)
    _book(account, sale, quote, fixed_due, now=sold_at, acting_user=acting_user, booked_at=now)
    reprice, details = _reprice_later_sales(account, sale)
    _post_reprice(account, reprice, {"now": now, "acting_user": acting_user, "sale": sale})
    if details:
        Sale.objects.filter(pk=sale.pk).update(breakdown={**sale.breakdown, "repriced": details})
    audit.record("upload_offline_sale", user=acting_user, obj=sale, changes={
        "account": account.meter_number, "station": station.code,
        "offline_reference": offline_reference, "sold_at": sold_at.isoformat(), "tid": tid,
        "amount_paid": str(quote.amount_paid), "energy_kwh": str(quote.energy_kwh),
        "energy_debt": str(quote.energy_debt), "repriced": str(reprice[0])})  # fmt: skip
    return sale


def reverse_sale(
    sale: Sale,
    *,
    acting_user,
    reason: str,
    token_entered: bool | None,
    evidence: str = "",
    refund_shift: Shift | None = None,
    refund_reference: str = "",
    now: datetime | None = None,
) -> SaleReversal:
    """A supervisor reverses a sale within the tariff's window (docs/vending.md, "Reversals").

    STS has no token that recalls a credit, so the reversal first asks whether the token was
    entered. Not entered: the customer is refunded. Entered: the customer is refunded too,
    and the account owes the token's energy (tax included) as a compensating debt. Either
    way the recovered debt is owed again, the money carried forward is put back as it was
    (what a later sale already spent of it is kept from the refund), the month's fixed
    charge stays owed, and later sales of the month priced in higher blocks because of this
    one are re-priced into a credit. A refund is paid at the drawer of an open shift (or
    outside the drawers, with its reference); closed shifts never change.
    """
    now = now or timezone.now()
    try:
        if not is_supervisor(acting_user):
            raise PermissionDenied("only a supervisor may reverse a sale")
        if not reason.strip():
            raise SaleRefused("a reversal needs a reason")
        if token_entered is None:
            raise SaleRefused(
                "say whether the token was entered in the meter (the meter's credit or token "
                "log, or the customer's word): an entered token is charged as debt"
            )
        with transaction.atomic():
            account = engine.locked_account(sale.account_id)
            sale = Sale.objects.select_for_update().select_related("tariff").get(pk=sale.pk)
            if sale.status == SaleStatus.REVERSED:
                raise SaleRefused("this sale is already reversed")
            if not org_within_scope(acting_user, sale.organisation, "change"):
                raise PermissionDenied("the sale is outside your organisation's scope")
            window = sale.tariff.reversal_window_days
            if now - sale.created_at > timedelta(days=window):
                raise SaleRefused(
                    f"the sale is older than the {window}-day reversal window; "
                    "adjust the account's debt instead"
                )
            reversal = _reverse_locked(
                account, sale, acting_user=acting_user, reason=reason,
                token_entered=token_entered, evidence=evidence, refund_shift=refund_shift,
                refund_reference=refund_reference, now=now,
            )  # fmt: skip
    except (VendingError, PermissionDenied) as exc:
        if isinstance(exc, PermissionDenied):
            record_denied(acting_user, "reverse_sale", sale, str(exc))
        else:
            record_failure("reverse_sale", acting_user=acting_user, obj=sale, error=exc)
        raise
    return reversal


def _refund_drawer(refund_shift: Shift | None, refund: Decimal, reference: str, acting_user):
    if refund <= 0:
        return None
    if refund_shift is None:
        if not reference.strip():
            raise SaleRefused(
                "pay the refund at the drawer of an open shift, or give the reference of the "
                "refund paid outside the drawers"
            )
        return None
    shift = Shift.objects.select_for_update().filter(pk=refund_shift.pk).first()
    if shift is None or shift.status != ShiftStatus.OPEN:
        raise SaleRefused("refunds are paid at the drawer of an open shift; this one is closed")
    if not Shift.objects.restrict(acting_user, "change").filter(pk=shift.pk).exists():
        raise PermissionDenied("the shift is outside your scope")
    return shift


def _reverse_locked(account, sale, *, acting_user, reason, token_entered, evidence,
                    refund_shift, refund_reference, now) -> SaleReversal:  # fmt: skip
    rate = sale.tariff.tax_percent
    fixed_tax = Decimal(sale.breakdown.get("fixed_tax", tariffs.tax_on(sale.fixed_charge, rate)))
    energy_tax = sale.tax - fixed_tax
    # Carried money: undo the sale's use of it; what a later sale spent is kept from the refund.
    credit = sale.credit_used - sale.credit_carried
    spent_since = max(ZERO, -(account.credit_balance + credit))
    credit += spent_since
    refund = sale.amount_paid - spent_since
    drawer = _refund_drawer(refund_shift, refund, refund_reference, acting_user)
    month = ledger.month_of(sale.created_at)
    others_in_month = Sale.objects.filter(
        account=account, status=SaleStatus.COMPLETED,
        created_at__gte=ledger.month_start(sale.created_at),
        created_at__lt=ledger.month_end(sale.created_at),
    ).exclude(pk=sale.pk)  # fmt: skip
    rebill = sale.fixed_charge > 0 and (ledger.month_of(now) != month or others_in_month.exists())
    reprice, details = (ZERO, ZERO), []
    if not token_entered:
        reprice, details = _reprice_later_sales(account, sale, excluding=sale)
    reversal = SaleReversal.objects.create(
        organisation=sale.organisation, sale=sale, reversed_by=acting_user, reason=reason,
        token_entered=token_entered,
        evidence=evidence.strip() or f"declared by {acting_user.get_username()}",
        refund_amount=refund, refund_shift=drawer, refund_reference=refund_reference,
        debt_restored=sale.debt_recovered, credit_restored=credit,
        compensating_debt=sale.energy_charge + energy_tax if token_entered else ZERO,
        fixed_charge_debt=sale.fixed_charge + fixed_tax if rebill else ZERO,
        reprice_credit=reprice[0], details={"repriced": details}, created_at=now,
    )  # fmt: skip
    common = {"now": now, "acting_user": acting_user, "sale": sale, "reversal": reversal}
    ledger.post(account, MovementKind.REVERSAL, debt=sale.debt_recovered, credit=credit,
                note=reason, **common)  # fmt: skip
    if token_entered:
        ledger.post(account, MovementKind.COMPENSATING_DEBT, debt=reversal.compensating_debt,
                    tax=energy_tax, note=f"{sale.energy_kwh} kWh entered", **common)  # fmt: skip
    if rebill:
        ledger.post(account, MovementKind.FIXED_REBILLED, debt=reversal.fixed_charge_debt,
                    tax=fixed_tax, period=month, note=f"fixed charge {month:%Y-%m}",
                    **common)  # fmt: skip
    elif sale.fixed_charge > 0 and account.fixed_charge_billed_until == ledger.next_month(month):
        # The month's only sale: its next sale charges the fixed charge again, so the part
        # this sale left as debt is no longer owed.
        shortfall = sale.movements.filter(kind=MovementKind.FIXED_SHORTFALL).first()
        if shortfall is not None:
            ledger.post(account, MovementKind.FIXED_REBILLED,
                        debt=-min(shortfall.debt_change, account.debt_balance),
                        tax=-shortfall.tax, period=month, note="charged on the next sale",
                        **common)  # fmt: skip
        PrepaidAccount.objects.filter(pk=account.pk).update(fixed_charge_billed_until=month)
    gross = _post_reprice(account, reprice, common)
    Sale.objects.filter(pk=sale.pk).update(status=SaleStatus.REVERSED)
    sale.status = SaleStatus.REVERSED
    audit.record("reverse_sale", user=acting_user, obj=sale, changes={
        "refund_amount": str(refund), "refund_shift": drawer.pk if drawer else None,
        "refund_reference": refund_reference, "token_entered": token_entered,
        "evidence": reversal.evidence, "debt_restored": str(sale.debt_recovered),
        "credit_restored": str(credit), "compensating_debt": str(reversal.compensating_debt),
        "fixed_charge_debt": str(reversal.fixed_charge_debt), "reprice_credit": str(gross),
        "reason": reason})  # fmt: skip
    return reversal


def _reprice_later_sales(account, pivot: Sale, *, excluding: Sale | None = None):
    """((gross, tax) overcharged, details) of the month's sales after `pivot`, re-priced.

    A later sale was priced from the month's block position at its time. A reversal takes
    the reversed sale's kWh out of it (`excluding`); an offline sale uploaded late puts its
    kWh in. Tokens cannot change, so the difference is settled on the account (positive:
    they were overcharged).
    """
    start = ledger.month_start(pivot.created_at)
    later = Sale.objects.filter(
        Q(status=SaleStatus.COMPLETED) | Q(reversal__token_entered=True), account=account,
        created_at__gt=pivot.created_at, created_at__lt=ledger.month_end(start),
    ).select_related("tariff").order_by("created_at", "id")  # fmt: skip
    total, total_tax, details = ZERO, ZERO, []
    for sale in later:
        before = kwh_bought_in_month(account, sale.created_at, excluding=excluding)
        position = before - sale.energy_kwh  # the sale itself is counted up to its own time
        cost, _lines = tariffs.energy_cost(sale.energy_kwh, tariffs.blocks_of(sale.tariff),
                                           position)  # fmt: skip
        rate = sale.tariff.tax_percent
        was_tax, now_tax = tariffs.tax_on(sale.energy_charge, rate), tariffs.tax_on(cost, rate)
        difference = sale.energy_charge + was_tax - cost - now_tax
        if difference:
            details.append({"sale": str(sale.reference), "energy_charge": str(sale.energy_charge),
                            "repriced": str(cost), "difference": str(difference)})  # fmt: skip
        total += difference
        total_tax += was_tax - now_tax
    return (total, total_tax), details


def _post_reprice(account, reprice: tuple[Decimal, Decimal], common: dict) -> Decimal:
    """Settle a re-pricing: a credit to carried money, or a debt; its tax reverses with it."""
    gross, tax = reprice
    if gross > 0:
        ledger.post(account, MovementKind.REPRICE, credit=gross, tax=-tax, **common)
    elif gross < 0:
        ledger.post(account, MovementKind.REPRICE, debt=-gross, tax=-tax, **common)
    return gross


def record_reprint(sale: Sale, *, acting_user) -> Sale:
    """A reprint shows the stored token again, marked REPRINT; counted and audited."""
    with transaction.atomic():
        Sale.objects.filter(pk=sale.pk).update(reprint_count=F("reprint_count") + 1)
        sale.refresh_from_db(fields=["reprint_count"])
        audit.record("reprint_receipt", user=acting_user, obj=sale,
                     changes={"reprint": sale.reprint_count})  # fmt: skip
    return sale


def adjust_debt(
    account: PrepaidAccount, change: Decimal, *, acting_user, reason: str, now=None
) -> PrepaidAccount:
    """Add (positive) or write off (negative) customer debt recovered from future sales."""
    change = Decimal(change)
    if change != tariffs.money(change) or change == 0:
        raise SaleRefused("the change must be a non-zero amount in whole cents")
    with transaction.atomic():
        locked = engine.locked_account(account.pk)
        if locked.debt_balance + change < 0:
            raise SaleRefused(f"the debt is only {locked.debt_balance}")
        ledger.post(locked, MovementKind.ADJUSTMENT, debt=change, now=now or timezone.now(),
                    acting_user=acting_user, note=reason)  # fmt: skip
        ensure_in_scope(locked, acting_user, "change")
        audit.record("adjust_debt", user=acting_user, obj=locked, changes={
            "debt_balance": [str(locked.debt_balance - change), str(locked.debt_balance)],
            "reason": reason})  # fmt: skip
    return locked


# --- management tokens ------------------------------------------------------------------


def issue_management_tokens(
    account: PrepaidAccount,
    purpose: str,
    *,
    acting_user,
    reason: str,
    watts: int | None = None,
    register: int | None = None,
    new_sgc: int | None = None,
    new_krn: int | None = None,
    new_ti: int | None = None,
    new_base_date: int | None = None,
    now: datetime | None = None,
) -> ManagementOrder:
    """Issue management token(s) to a meter: power limit, clear tamper/credit, key change."""
    now = now or timezone.now()
    try:
        if not may_issue_management_tokens(acting_user):
            raise PermissionDenied("management tokens need a vending supervisor")
        if not reason.strip():
            raise SaleRefused("a management token needs a reason")
        with transaction.atomic():
            locked = engine.locked_account(account.pk)
            if not org_within_scope(acting_user, locked.organisation, "add"):
                raise PermissionDenied("the account is outside your organisation's scope")
            order = ManagementOrder.objects.create(
                organisation=locked.organisation, account=locked, purpose=purpose, watts=watts,
                register=register, new_sgc=new_sgc, new_krn=new_krn, new_ti=new_ti,
                new_base_date=new_base_date, reason=reason, issued_by=acting_user,
                created_at=now,
            )  # fmt: skip
            tokens = _management_tokens(locked, order, now)
            audit.record("issue_management_token", user=acting_user, obj=order, changes={
                "purpose": purpose, "account": locked.meter_number, "tokens": len(tokens),
                "watts": watts, "register": register, "new_sgc": new_sgc, "new_krn": new_krn,
                "new_ti": new_ti, "new_base_date": new_base_date, "reason": reason})  # fmt: skip
            return order
    except (VendingError, PermissionDenied) as exc:
        record_failure(f"issue_{purpose}", acting_user=acting_user, obj=account, error=exc)
        raise


def _management_tokens(account: PrepaidAccount, order: ManagementOrder, now) -> list[Token]:
    key = engine.decoder_key(account)
    base_date = account.base_date
    rows = []

    def add(sts, sequence=1, tid=None, value=None):
        rows.append(Token(
            organisation=account.organisation, account=account, meter=account.meter,
            order=order, purpose=order.purpose, kind=sts.kind.value, sequence=sequence,
            digits=sts.digits, base_date=base_date, tid=tid, value=value, issued_at=now,
        ))  # fmt: skip

    try:
        if order.purpose == TokenPurpose.KEY_CHANGE:
            new = {
                "sgc": account.sgc if order.new_sgc is None else order.new_sgc,
                "krn": account.krn if order.new_krn is None else order.new_krn,
                "ti": account.ti if order.new_ti is None else order.new_ti,
                "base_date": base_date if order.new_base_date is None else order.new_base_date,
            }
            old = {"sgc": account.sgc, "krn": account.krn, "ti": account.ti,
                   "base_date": base_date}  # fmt: skip
            if new == old:
                raise SaleRefused("a key change needs a new SGC, KRN, TI or base date")
            if new["base_date"] < base_date:
                raise SaleRefused("the base date can only move forward")
            new_key = engine.decoder_key(account, **new)
            rollover = new["base_date"] != base_date
            sections = encode_key_change(
                key, new_key, new_krn=new["krn"], new_ti=new["ti"],
                new_key_type=account.key_type, rollover=rollover, new_sgc=new["sgc"],
            )  # fmt: skip
            for sequence, sts in enumerate(sections, 1):
                add(sts, sequence)
            PrepaidAccount.objects.filter(pk=account.pk).update(
                **new, **({"last_tid": 0} if rollover else {})
            )
        elif order.purpose in (
            TokenPurpose.MAX_POWER, TokenPurpose.CLEAR_TAMPER, TokenPurpose.CLEAR_CREDIT
        ):  # fmt: skip
            if order.purpose == TokenPurpose.MAX_POWER and order.watts is None:
                raise SaleRefused("a power limit token needs the limit in watts")
            tid = engine.allocate_tid(account, now)
            common = {"issued_at": tid, "base_date": base_date}
            if order.purpose == TokenPurpose.MAX_POWER:
                sts = encode_max_power(key, order.watts, **common)
                add(sts, tid=tid, value=sts.watts)
            elif order.purpose == TokenPurpose.CLEAR_TAMPER:
                add(encode_clear_tamper(key, **common), tid=tid)
            else:
                register = REGISTER_ALL if order.register is None else order.register
                add(encode_clear_credit(key, register, **common), tid=tid, value=register)
        else:
            raise SaleRefused(f"{order.purpose} is not a management token")
    except StsError as exc:
        raise SaleRefused(str(exc)) from None
    return Token.objects.bulk_create(rows)
