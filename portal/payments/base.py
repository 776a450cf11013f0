"""What a payment provider does for the portal (`Provider`), and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


class ProviderError(Exception):
    """The provider refused or could not be reached (the message is safe to show)."""


class BadSignature(Exception):
    """A webhook whose signature does not verify: ignored, answered 400."""


@dataclass(frozen=True)
class Checkout:
    """Where to send the customer, and the provider's id of this payment."""

    redirect_url: str
    provider_ref: str


@dataclass(frozen=True)
class Outcome:
    """What a provider's notification says of one payment."""

    provider_ref: str
    paid: bool
    final: bool  # False: a notification that settles nothing (ignored)
    amount_minor: int | None
    currency: str
    reason: str = ""


class Provider:
    """A payment provider: starts a checkout, reads its notifications."""

    name = ""

    def start(self, payment, *, return_url: str, cancel_url: str) -> Checkout:
        raise NotImplementedError

    def parse_webhook(self, body: bytes, headers) -> Outcome:
        """The verified notification; BadSignature when it is not the provider's."""
        raise NotImplementedError


def minor_units(amount: Decimal) -> int:
    """Cents (two-decimal currencies, as the vending tariffs keep money)."""
    return int((amount * 100).to_integral_value())
