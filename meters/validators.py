"""Django field validators of the meters app (the rules themselves live in pure modules)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from . import obis


def validate_obis(value: str) -> None:
    """An OBIS code by the one rule of :mod:`meters.obis`."""
    try:
        obis.parse(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
