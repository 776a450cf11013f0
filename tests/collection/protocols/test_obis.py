import pytest
from hypothesis import given
from hypothesis import strategies as st

from collection.protocols.obis import format_obis, obis_bytes, obis_dotted, parse_obis


@pytest.mark.parametrize(
    "text",
    ["1-0:1.8.0*255", "1-0:1.8.0", "1.0.1.8.0.255", "1-0:1.8.0.255", b"\x01\x00\x01\x08\x00\xff"],
)
def test_forms(text):
    assert format_obis(text) == "1-0:1.8.0*255"
    assert obis_bytes(text) == b"\x01\x00\x01\x08\x00\xff"
    assert obis_dotted(text) == "1.0.1.8.0.255"


@pytest.mark.parametrize("bad", ["", "1-0:1.8", "1-0:1.8.0*256", "x", b"\x01", None, 5])
def test_invalid(bad):
    with pytest.raises(ValueError):
        parse_obis(bad)


@given(st.tuples(*[st.integers(0, 255)] * 6))
def test_roundtrip(parts):
    assert parse_obis(format_obis(parts)) == parts
    assert parse_obis(obis_dotted(parts)) == parts
    assert parse_obis(bytes(parts)) == parts


@given(st.text(max_size=30))
def test_garbage_only_valueerror(text):
    try:
        parse_obis(text)
    except ValueError:
        pass
