"""OBIS parsing and formatting: the one rule the registry, the store and the protocols share."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from meters import obis
from meters.validators import validate_obis

ACTIVE_IMPORT = "1-0:1.8.0*255"


@pytest.mark.parametrize(
    "text",
    [
        "1-0:1.8.0*255",
        "1.0.1.8.0.255",
        "1-0:1.8.0",
        "1.8.0",
        " 1-0:1.8.0&255 ",  # once refused by the protocols' copy
        "1-0:1.8.0.255",  # once refused by the registry's copy
        "1.8.0.255",
        b"\x01\x00\x01\x08\x00\xff",
        (1, 0, 1, 8, 0, 255),
    ],
)
def test_notations_of_active_import_agree(text):
    assert obis.normalise(text) == ACTIVE_IMPORT
    assert obis.to_bytes(text) == b"\x01\x00\x01\x08\x00\xff"
    assert obis.dotted(text) == "1.0.1.8.0.255"
    assert obis.is_valid(text)


def test_abstract_and_event_codes():
    assert obis.normalise("0.0.99.98.0.255") == "0-0:99.98.0*255"
    assert obis.parse("0-0:1.0.0*255").dotted == "0.0.1.0.0.255"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1.8",
        "1-0:1.8",
        "1-0:1.8.0*256",
        "a.b.c",
        "x",
        "1-0:1.8.0*",
        "1..8.0",
        b"\x01",
        (1, 0, 1, 8, 0),
        (1, 0, 1, 8, 0, 256),
        (1, 0, 1, 8, 0, True),
        None,
        18,
        5,
    ],
)
def test_bad_codes_are_refused(bad):
    with pytest.raises(ValueError):
        obis.parse(bad)
    assert not obis.is_valid(bad)


def test_validator_raises_validation_error():
    with pytest.raises(ValidationError):
        validate_obis("1-0:1.8")
    validate_obis("1-0:1.8.0.255")


def test_cumulative_registers():
    assert obis.is_cumulative("1-0:1.8.0*255")
    assert not obis.is_cumulative("1-0:1.29.0*255")
    assert not obis.is_cumulative("garbage")


@given(st.lists(st.integers(0, 255), min_size=6, max_size=6))
def test_round_trips(parts):
    code = obis.Obis(*parts)
    assert obis.parse(str(code)) == code
    assert obis.parse(code.dotted) == code
    assert obis.parse(code.to_bytes()) == code
    assert obis.parse(tuple(parts)) == code
    assert obis.Obis.from_bytes(code.to_bytes()) == code


@given(st.text(max_size=30))
def test_garbage_only_value_error(text):
    try:
        obis.parse(text)
    except ValueError:
        pass
