"""Exception hierarchy of the STS token engine."""

from __future__ import annotations


class StsError(Exception):
    """Base class of every error raised by :mod:`vending.sts`."""


class StsValueError(StsError, ValueError):
    """An input value is malformed or out of the range the standard allows."""


class AmountRangeError(StsValueError):
    """A transfer amount (or power limit) cannot be represented in a token."""


class TidRangeError(StsValueError):
    """A time of issue falls outside the 24-bit TID window of its base date."""


class PanError(StsValueError):
    """A meter number / MeterPAN is malformed or fails its Luhn check."""


class InvalidKeyError(StsValueError):
    """A vending or decoder key has the wrong length or format."""


class TokenFormatError(StsValueError):
    """A token string is not a valid 20-digit, 66-bit STS token."""


class CrcError(StsValueError):
    """A decoded token fails its CRC check (wrong key, wrong meter or typo)."""


class UnsupportedTokenError(StsValueError):
    """A token class/subclass (or algorithm combination) is not supported."""
