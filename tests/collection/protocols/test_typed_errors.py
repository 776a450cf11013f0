"""Protocol code reports misuse and broken invariants as typed errors, never as `assert`.

`python -O` strips asserts, and an AssertionError says nothing about whether a retry can help;
every failure of the protocol layer is a ProtocolError with `retryable` (issue 13).
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from collection.protocols.dlms.association import DlmsAssociation
from collection.protocols.dlms.client import DlmsClient
from collection.protocols.dlms.settings import DlmsSettings
from collection.protocols.errors import ConnectionFailed, NotAssociated

PROTOCOLS = Path(__file__).resolve().parents[3] / "collection" / "protocols"
MAX_LINES = 800  # house style: split a module that passes ~800 lines


def _modules():
    return sorted(PROTOCOLS.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PROTOCOLS)))
def test_no_runtime_asserts(path):
    tree = ast.parse(path.read_text())
    asserts = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert asserts == [], f"{path.name}: assert on lines {asserts}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PROTOCOLS)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) < MAX_LINES


@pytest.mark.parametrize("session_class", [DlmsAssociation, DlmsClient])
def test_services_of_an_unopened_session_raise_not_associated(session_class):
    session = session_class(DlmsSettings(url="tcp://127.0.0.1:1"))

    async def main():
        for call in (
            session.get_raw(8, "0.0.1.0.0.255", 2),
            session.get_many([(8, "0.0.1.0.0.255", 2)] * 2),
            session.set_value(8, "0.0.1.0.0.255", 2, b"\x00"),
            session._action(70, "0.0.96.3.10.255", 1, b"\x0f\x00"),
        ):
            with pytest.raises(NotAssociated) as raised:
                await call
            assert isinstance(raised.value, ConnectionFailed) and raised.value.retryable

    asyncio.run(main())
