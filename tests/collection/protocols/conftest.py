"""Helpers to run the DLMS client against the simulated fleet over loopback."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest

NOW = datetime(2024, 3, 15, 12, 7, 30, tzinfo=UTC)
CLIENT_TITLE = b"HEADEND1"


def make_settings(meter, address, interface="wrapper", auth="none", **overrides):
    from collection.protocols.dlms.settings import DlmsSettings

    host, port, server_address = address
    kwargs = dict(
        url=f"tcp://{host}:{port}",
        interface=interface,
        auth=auth,
        server_address=server_address,
        physical_address=17 if interface == "hdlc" else None,
        response_timeout=2.0,
        connect_timeout=2.0,
        hdlc_retries=1,
    )
    if auth == "low":
        kwargs["password"] = meter.password
    if auth == "high":
        kwargs.update(auth_key=meter.auth_key, block_key=meter.block_key, system_title=CLIENT_TITLE)
    kwargs.update(overrides)
    return DlmsSettings(**kwargs)


@contextlib.asynccontextmanager
async def fleet(meters, interface="wrapper", now=NOW, **kwargs):
    from collection.simulators.dlms_fleet import DlmsFleet

    clock = (lambda: now) if now is not None else None
    async with DlmsFleet(meters, interface=interface, now=clock, **kwargs) as f:
        yield f


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def settings():
    """These tests never touch Django.  tests/conftest.py has an autouse fixture
    that asks for pytest-django's ``settings``; shadow it here so the suite also
    runs with ``-p no:django`` (the protocol layer must not import Django)."""
    import types

    return types.SimpleNamespace()
