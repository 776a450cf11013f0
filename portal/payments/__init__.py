"""Buying prepaid credit in the portal through a payment provider, exactly once.

1. `begin`: a `Payment` row (customer, account, amount in the tariff's currency) and the
   provider's checkout (`Provider.start`); the customer is sent to pay there.
2. `settle`: the provider's confirmation, by its webhook (Stripe) or its page (sandbox),
   under a row lock of the payment: a paid payment whose amount and currency match makes
   one vending sale through `vending.actions.pay` with the idempotency key
   `portal-<reference>` as the portal's payment identity (`AMI_PORTAL_PAYER`, a payment
   integration user bound to an integration station covering the customers). A payment
   settled already returns as it is: a retried webhook, a second tab, a race of both
   never issue a second token. A mismatching amount fails the payment and issues nothing.
3. `notify`: the token by SMS and e-mail to the customer's phone and address (once:
   `notified_at`, set under the lock).

Providers: "sandbox" (demo and tests) and "stripe" (`portal/payments/stripe.py`), chosen
by `AMI_PORTAL_PAYMENT_PROVIDER`.
"""

from __future__ import annotations

import logging
import smtplib
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from meters.alarms import sms
from vending import actions
from vending.errors import VendingError

from ..models import Payment, PaymentState
from .base import BadSignature, Outcome, Provider, ProviderError, minor_units
from .sandbox import SandboxProvider
from .stripe import StripeProvider

PROVIDERS = {"sandbox": SandboxProvider, "stripe": StripeProvider}
MIN_AMOUNT, MAX_AMOUNT = Decimal("1"), Decimal("10000")
log = logging.getLogger(__name__)

__all__ = ["BadSignature", "Outcome", "ProviderError", "begin", "provider", "settle"]


def provider(name: str | None = None) -> Provider:
    name = name or getattr(settings, "AMI_PORTAL_PAYMENT_PROVIDER", "sandbox")
    if name not in PROVIDERS:
        raise ProviderError(f"unknown payment provider {name!r}")
    return PROVIDERS[name]()


def payer() -> User | None:
    """The portal's payment identity (AMI_PORTAL_PAYER), or None where none is set up."""
    name = getattr(settings, "AMI_PORTAL_PAYER", "")
    return User.objects.filter(username=name, is_active=True).first() if name else None


def begin(customer, account, amount: Decimal, *, return_url, cancel_url) -> tuple[Payment, str]:
    """A new payment and the URL of its checkout; ProviderError if it cannot start."""
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        raise ProviderError(
            f"Enter an amount from {MIN_AMOUNT} to {MAX_AMOUNT} {account.tariff.currency}."
        )
    if payer() is None:
        raise ProviderError("buying online is not set up yet: buy at a vending point")
    chosen = provider()
    payment = Payment.objects.create(
        customer=customer,
        account=account,
        organisation_id=account.organisation_id,
        amount=amount.quantize(Decimal("0.01")),
        currency=account.tariff.currency,
        provider=chosen.name,
    )
    try:
        checkout = chosen.start(
            payment,
            return_url=return_url(payment),
            cancel_url=cancel_url(payment),
        )
    except ProviderError as error:
        payment.state, payment.detail = PaymentState.FAILED, str(error)[:300]
        payment.save(update_fields=["state", "detail"])
        raise
    payment.provider_ref, payment.state = checkout.provider_ref, PaymentState.PENDING
    payment.save(update_fields=["provider_ref", "state"])
    return payment, checkout.redirect_url


def settle(provider_name: str, outcome: Outcome) -> Payment | None:
    """Apply a provider's verified outcome (see the module's docstring); None: unknown ref."""
    if not outcome.final:
        return Payment.objects.filter(
            provider=provider_name, provider_ref=outcome.provider_ref
        ).first()
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("account__tariff", "customer")
            .filter(provider=provider_name, provider_ref=outcome.provider_ref)
            .first()
        )
        if payment is None or payment.state in (PaymentState.PAID, PaymentState.FAILED):
            return payment  # unknown, or settled already: nothing twice
        now = timezone.now()
        if not outcome.paid:
            payment.state, payment.detail, payment.settled_at = (
                PaymentState.FAILED,
                outcome.reason[:300],
                now,
            )
            payment.save(update_fields=["state", "detail", "settled_at"])
            return payment
        if outcome.amount_minor is not None and (
            outcome.amount_minor != minor_units(payment.amount)
            or (outcome.currency and outcome.currency != payment.currency.upper())
        ):
            payment.state, payment.settled_at = PaymentState.FAILED, now
            payment.detail = (
                f"the provider confirmed {outcome.amount_minor} {outcome.currency}, not "
                f"{minor_units(payment.amount)} {payment.currency}: no token issued"
            )
            payment.save(update_fields=["state", "detail", "settled_at"])
            log.error("portal payment %s: %s", payment.reference, payment.detail)
            return payment
        try:
            sale, _created = actions.pay(
                payment.account,
                payment.amount,
                currency=payment.currency,
                payment_reference=f"{provider_name}:{outcome.provider_ref}"[:100],
                idempotency_key=f"portal-{payment.reference}",
                acting_user=payer(),
            )
        except (VendingError, PermissionDenied) as error:
            payment.state, payment.detail, payment.settled_at = (
                PaymentState.FAILED,
                str(error)[:300],
                now,
            )
            payment.save(update_fields=["state", "detail", "settled_at"])
            log.error("portal payment %s paid but refused by vending: %s", payment.reference, error)
            return payment
        payment.sale, payment.state, payment.settled_at = sale, PaymentState.PAID, now
        payment.save(update_fields=["sale", "state", "settled_at"])
        transaction.on_commit(lambda: notify(payment.pk))
    return payment


def token_destinations(customer) -> tuple[str, str]:
    """(phone, e-mail address) the token is sent to; "" where there is none."""
    email = (customer.portal_user.email if customer.portal_user_id else "") or customer.email
    return customer.phone or "", email or ""


def notify(payment_id: int) -> bool:
    """Send the token by SMS and e-mail, once per payment; True if this call sent it."""
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("sale", "customer", "account")
            .filter(pk=payment_id, state=PaymentState.PAID, notified_at__isnull=True)
            .first()
        )
        if payment is None:
            return False
        payment.notified_at = timezone.now()
        payment.save(update_fields=["notified_at"])
    token = payment.sale.credit_token
    text = (
        f"Token for meter {payment.account.meter_number}: {token.grouped} "
        f"({payment.sale.energy_kwh} kWh, paid {payment.amount} {payment.currency})."
    )
    phone, email = token_destinations(payment.customer)
    if phone:
        try:
            sms.get_backend().send(phone, text[:160])
        except sms.SmsError:
            log.warning("token SMS for payment %s not sent", payment.reference, exc_info=True)
    if email:
        try:
            send_mail("Your electricity token", text, settings.DEFAULT_FROM_EMAIL, [email])
        except (smtplib.SMTPException, OSError):
            log.warning("token e-mail for payment %s not sent", payment.reference, exc_info=True)
    return True
