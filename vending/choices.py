"""Choices of the vending app."""

from django.db import models


class Algorithm(models.TextChoices):
    """STS encryption algorithm of a meter's decoder key."""

    EA07 = "07", "EA07 (Standard Transfer Algorithm)"
    EA11 = "11", "EA11 (MISTY1)"


class KeyDerivation(models.TextChoices):
    """Decoder key generation algorithm (64-bit DES based, or 160-bit HMAC based)."""

    DKGA02 = "02", "DKGA02"
    DKGA04 = "04", "DKGA04"


class BaseDate(models.IntegerChoices):
    """The base date a decoder key counts its token identifiers (TIDs) from."""

    Y1993 = 1993, "1993"
    Y2014 = 2014, "2014"
    Y2035 = 2035, "2035"


class TariffKind(models.TextChoices):
    FLAT = "flat", "Flat rate"
    BLOCK = "block", "Stepped blocks (by kWh bought this month)"


class StationKind(models.TextChoices):
    """Where a station's sales come from: clerks at a counter, or a payment system's API."""

    COUNTER = "counter", "Counter (clerks in shifts)"
    INTEGRATION = "integration", "Third-party payment system (its own API identity)"


class ShiftStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class SaleChannel(models.TextChoices):
    COUNTER = "counter", "Counter (clerk at a station)"
    API = "api", "Third-party payment"
    OFFLINE = "offline", "Offline sale (uploaded later)"


class SaleStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    REVERSED = "reversed", "Reversed"


class MovementKind(models.TextChoices):
    """Why a prepaid account's debt or carried-forward money changed."""

    SALE = "sale", "Sale (debt recovered, money carried forward)"
    FIXED_ARREARS = "fixed-arrears", "Fixed charge of a month without purchase"
    FIXED_SHORTFALL = "fixed-shortfall", "Fixed charge the payment could not cover"
    ADJUSTMENT = "adjustment", "Debt adjustment"
    REVERSAL = "reversal", "Reversal (recovered debt and carried money restored)"
    COMPENSATING_DEBT = "compensating-debt", "Entered token of a reversed sale"
    FIXED_REBILLED = "fixed-rebilled", "Fixed charge of a reversed sale, owed again"
    REPRICE = "reprice", "Later sales of the month re-priced after a reversal"


class TokenPurpose(models.TextChoices):
    """What an issued token does in the meter."""

    CREDIT = "credit", "Credit (electricity)"
    MAX_POWER = "max-power", "Maximum power limit"
    CLEAR_TAMPER = "clear-tamper", "Clear tamper"
    CLEAR_CREDIT = "clear-credit", "Clear credit"
    KEY_CHANGE = "key-change", "Key change"


# Management tokens: the purposes a supervisor may order from the dashboard or the API.
MANAGEMENT_PURPOSES = (
    TokenPurpose.MAX_POWER,
    TokenPurpose.CLEAR_TAMPER,
    TokenPurpose.CLEAR_CREDIT,
    TokenPurpose.KEY_CHANGE,
)
