"""Meter numbers: the decoder reference number (DRN / IAIN) and the 18-digit MeterPAN.

IEC 62055-41 builds the MeterPAN as ``IIN || IAIN || PAN check digit``:

* 11-digit meter numbers use the STS issuer identification number ``600727``;
* 13-digit meter numbers use the 4-digit IIN ``0000``.

Both layouts give 18 digits. The meter number itself ends in a Luhn check digit, and the
last digit of the MeterPAN is the Luhn check digit over the preceding 17 digits.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PanError

IIN_11 = "600727"  # IIN used with 11-digit meter numbers
IIN_13 = "0000"  # IIN used with 13-digit meter numbers
PAN_LENGTH = 18


def luhn_check_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit to append to ``digits``."""
    if not digits.isdigit() or not digits.isascii():
        raise PanError(f"Luhn input must be decimal digits, got {digits!r}")
    total = 0
    # Walking from the right, every digit in an even position (0, 2, ...) gets doubled,
    # because the check digit will be appended to the right of it.
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    """True if the last digit of ``digits`` is the Luhn check digit of the others."""
    return len(digits) >= 2 and luhn_check_digit(digits[:-1]) == digits[-1]


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise PanError(f"meter number must be a string of digits, got {type(text).__name__}")
    cleaned = text.replace(" ", "").replace("-", "")
    if not cleaned or not cleaned.isdigit() or not cleaned.isascii():
        raise PanError(f"meter number must contain only digits, got {text!r}")
    return cleaned


@dataclass(frozen=True)
class MeterPan:
    """A validated MeterPAN (issuer identification number plus meter number)."""

    iin: str
    drn: str  # the meter number (IAIN), including its own check digit

    def __post_init__(self) -> None:
        if (self.iin, len(self.drn)) not in ((IIN_11, 11), (IIN_13, 13)):
            raise PanError(
                "meter number layout must be IIN 600727 with 11 digits or IIN 0000 with "
                f"13 digits, got IIN {self.iin!r} with {len(self.drn)} digits"
            )
        if not self.drn.isdigit() or not self.drn.isascii():
            raise PanError(f"meter number must contain only digits, got {self.drn!r}")
        if not luhn_valid(self.drn):
            raise PanError(
                f"meter number {self.drn} fails its Luhn check digit "
                f"(expected {luhn_check_digit(self.drn[:-1])}, got {self.drn[-1]})"
            )

    @classmethod
    def parse(cls, text: str) -> MeterPan:
        """Parse an 11- or 13-digit meter number or a full 18-digit MeterPAN.

        Spaces and dashes are ignored. An 18-digit PAN must start with ``600727`` or
        ``0000`` and carry a correct PAN check digit.
        """
        digits = _clean(text)
        if len(digits) == 11:
            return cls(IIN_11, digits)
        if len(digits) == 13:
            return cls(IIN_13, digits)
        if len(digits) != PAN_LENGTH:
            raise PanError(
                "expected an 11- or 13-digit meter number or an 18-digit MeterPAN, "
                f"got {len(digits)} digits"
            )
        if digits.startswith(IIN_11):
            pan = cls(IIN_11, digits[6:17])
        elif digits.startswith(IIN_13):
            pan = cls(IIN_13, digits[4:17])
        else:
            raise PanError(f"MeterPAN {digits} must start with IIN {IIN_11} or {IIN_13}")
        if pan.pan != digits:
            raise PanError(
                f"MeterPAN {digits} fails its Luhn check digit (expected {pan.check_digit})"
            )
        return pan

    @property
    def check_digit(self) -> str:
        """The PAN check digit (Luhn over IIN and meter number)."""
        return luhn_check_digit(self.iin + self.drn)

    @property
    def pan(self) -> str:
        """The 18-digit MeterPAN."""
        return self.iin + self.drn + self.check_digit

    def __str__(self) -> str:
        return self.pan
