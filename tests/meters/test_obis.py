"""OBIS parsing and formatting."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from meters import obis


@pytest.mark.parametrize(
    "text",
    ["1-0:1.8.0*255", "1.0.1.8.0.255", "1-0:1.8.0", "1.8.0", " 1-0:1.8.0&255 "],
)
def test_notations_of_active_import_agree(text):
    assert obis.normalise(text) == "1-0:1.8.0*255"


def test_abstract_and_event_codes():
    assert obis.normalise("0.0.99.98.0.255") == "0-0:99.98.0*255"
    assert obis.parse("0-0:1.0.0*255").dotted == "0.0.1.0.0.255"


@pytest.mark.parametrize(
    "bad", ["", "1.8", "1-0:1.8.0*256", "a.b.c", "1-0:1.8.0*", "1..8.0", None, 18]
)
def test_bad_codes_are_refused(bad):
    with pytest.raises(ValueError):
        obis.parse(bad)


def test_validator_raises_validation_error():
    with pytest.raises(ValidationError):
        obis.validate("1-0:1.8")


@given(st.lists(st.integers(0, 255), min_size=6, max_size=6))
def test_round_trips(parts):
    code = obis.Obis(*parts)
    assert obis.parse(str(code)) == code
    assert obis.parse(code.dotted) == code
    assert obis.Obis.from_bytes(code.to_bytes()) == code
