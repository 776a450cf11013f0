"""Amount encoding of STS tokens: a 16-bit field with a 2-bit exponent and 14-bit mantissa.

IEC 62055-41 (transfer amount / power-limit fields): the 16-bit field is ``e << 14 | m``
and encodes the integer value

* ``t = m``                                        for ``e = 0``
* ``t = m * 10**e + sum(2**14 * 10**(n - 1) for n in 1..e)``   for ``e = 1, 2, 3``

so every exponent range starts right above the previous one (16 384, 180 224 and
1 818 624) and the largest value is 18 201 624. Transfer amounts are counted in tenths
of the unit (0.1 kWh, ...), power limits in whole watts.

Values that fall between two representable values are rounded *up* to the next
representable one, as the standard requires, so a customer is never credited less than
was paid for. Fractions finer than the resolution (0.1 unit) are rounded up as well;
callers get the credited amount back and must charge for that amount.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

from .errors import AmountRangeError

MANTISSA_BITS = 14
MANTISSA_MAX = (1 << MANTISSA_BITS) - 1

# First value of each exponent range: sum of 2**14 * 10**(n - 1) for n = 1..e.
_OFFSETS = tuple(
    sum((1 << MANTISSA_BITS) * 10 ** (n - 1) for n in range(1, e + 1)) for e in range(4)
)
# Largest value of each exponent range.
_MAXIMA = tuple(_OFFSETS[e] + MANTISSA_MAX * 10**e for e in range(4))

MAX_UNITS = _MAXIMA[3]  # 18 201 624 (tenths of a unit for credit, watts for limits)
assert MAX_UNITS == 18_201_624


def encode_units(units: int) -> int:
    """Encode a non-negative integer count of units into the 16-bit amount field.

    Returns ``exponent << 14 | mantissa`` for the smallest representable value that is
    not less than ``units``. Raises :class:`AmountRangeError` if ``units`` is negative,
    not an integer, or above :data:`MAX_UNITS`.
    """
    if isinstance(units, bool) or not isinstance(units, int):
        raise AmountRangeError(f"amount must be an integer count of units, got {units!r}")
    if units < 0:
        raise AmountRangeError(f"amount must not be negative, got {units}")
    if units > MAX_UNITS:
        raise AmountRangeError(f"amount {units} exceeds the STS maximum of {MAX_UNITS} units")
    for exponent in range(4):
        if units <= _MAXIMA[exponent]:
            scale = 10**exponent
            # Ceiling division; values in the gap below this range's offset map to m = 0.
            mantissa = max(0, -(-(units - _OFFSETS[exponent]) // scale))
            return exponent << MANTISSA_BITS | mantissa
    raise AssertionError("unreachable")  # pragma: no cover


def decode_units(field: int) -> int:
    """Decode a 16-bit amount field into its integer count of units."""
    if not 0 <= field <= 0xFFFF:
        raise AmountRangeError(f"amount field must be 16 bits, got {field}")
    exponent = field >> MANTISSA_BITS
    mantissa = field & MANTISSA_MAX
    return _OFFSETS[exponent] + mantissa * 10**exponent


def representable_units(units: int) -> int:
    """The value a token actually carries for ``units`` (after rounding up)."""
    return decode_units(encode_units(units))


def to_decimal(value: Decimal | int | str | float) -> Decimal:
    """Convert user input into a finite :class:`~decimal.Decimal` (floats via ``str``)."""
    if isinstance(value, bool):
        raise AmountRangeError(f"amount must be a number, got {value!r}")
    try:
        # str() keeps 0.1 as 0.1 instead of its binary approximation.
        dec = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise AmountRangeError(f"amount must be a number, got {value!r}") from None
    if not dec.is_finite():
        raise AmountRangeError(f"amount must be a finite number, got {value!r}")
    return dec


def tenths_from_amount(amount: Decimal | int | str | float) -> int:
    """Convert an amount in whole units (e.g. ``"10.05"`` kWh) to tenths, rounding up."""
    dec = to_decimal(amount)
    if dec < 0:
        raise AmountRangeError(f"amount must not be negative, got {amount}")
    tenths = int((dec * 10).to_integral_value(rounding=ROUND_CEILING))
    if tenths > MAX_UNITS:
        raise AmountRangeError(
            f"amount {amount} exceeds the STS maximum of {Decimal(MAX_UNITS) / 10} units"
        )
    return tenths


def amount_from_tenths(tenths: int) -> Decimal:
    """Express a count of tenths as a :class:`~decimal.Decimal` with one decimal place."""
    return Decimal(tenths).scaleb(-1)
