"""Why a vending operation did not happen; each error says what an API client should answer."""

from __future__ import annotations


class VendingError(Exception):
    """Base: the operation left nothing behind (no sale, no token, no charge)."""

    http_status = 422
    code = "vending_error"


class SaleRefused(VendingError):
    """The request cannot be sold as asked (amount too small, wrong currency, no shift...)."""

    code = "sale_refused"


class VendingUnavailable(VendingError):
    """The token engine cannot produce a token now (missing vending key, TID range...)."""

    http_status = 503
    code = "vending_unavailable"


class IdempotencyConflict(VendingError):
    """The idempotency key was already used for a different payment."""

    http_status = 409
    code = "idempotency_conflict"


class NotASeller(VendingError):
    """The caller may not sell through this door (no integration station, no counter)."""

    http_status = 403
    code = "not_a_seller"
