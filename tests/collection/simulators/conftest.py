"""Shared helpers: a fleet running in a thread and dlms-cosem client factories."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import structlog
from dlms_cosem import cosem, utils
from dlms_cosem import enumerations as E
from dlms_cosem.client import DlmsClient
from dlms_cosem.cosem import Obis
from dlms_cosem.io import BlockingTcpIO, HdlcTransport, TcpTransport
from dlms_cosem.security import (
    HighLevelSecurityGmacAuthentication,
    LowLevelSecurityAuthentication,
    NoSecurityAuthentication,
)

from collection.simulators.dlms_fleet import DlmsFleet, make_meters

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

NOW = datetime(2025, 3, 10, 12, 7, 30, tzinfo=UTC)
CLIENT_TITLE = b"TST00001"


def cosem_client(fleet, meter, level="none", *, hdlc=False, password=None, keys=None, ic=0):
    host, port, sa = fleet.address_of(meter.serial)
    sap = {"none": 16, "low": 17, "high": 1}[level]
    io = BlockingTcpIO(host, port, timeout=5)
    if hdlc:
        transport = HdlcTransport(
            client_logical_address=sap,
            server_logical_address=sa,
            server_physical_address=17,
            extended_addressing=sa > 127,
            io=io,
        )
    else:
        transport = TcpTransport(client_logical_address=sap, server_logical_address=sa, io=io)
    kw = {}
    if level == "none":
        auth = NoSecurityAuthentication()
    elif level == "low":
        auth = LowLevelSecurityAuthentication(secret=password or meter.password)
    else:
        auth = HighLevelSecurityGmacAuthentication(challenge_length=32)
        ek, ak = keys or (meter.block_key, meter.auth_key)
        kw = dict(
            encryption_key=ek,
            authentication_key=ak,
            client_system_title=CLIENT_TITLE,
            client_initial_invocation_counter=ic,
        )
    return DlmsClient(transport=transport, authentication=auth, timeout=5, **kw)


def attr(iface, obis: str, index: int) -> cosem.CosemAttribute:
    return cosem.CosemAttribute(iface, Obis(*[int(x) for x in obis.split(".")][:5]), index)


def get_value(client, iface, obis, index, access=None):
    return utils.parse_as_dlms_data(client.get(attr(iface, obis, index), access))


REGISTER = E.CosemInterface.REGISTER
CLOCK = E.CosemInterface.CLOCK
DATA = E.CosemInterface.DATA
PROFILE = E.CosemInterface.PROFILE_GENERIC


@pytest.fixture
def meters():
    return make_meters(5)


@pytest.fixture
def fleet(meters):
    f = DlmsFleet(meters, now=lambda: NOW)
    with f.running_in_thread():
        yield f


@pytest.fixture
def hdlc_fleet(meters):
    f = DlmsFleet(meters, now=lambda: NOW, interface="hdlc")
    with f.running_in_thread():
        yield f


@pytest.fixture
def settings():
    """Stand-in for pytest-django's fixture (suite-wide autouse fixtures ask for it);
    these tests never touch Django and must run with ``-p no:django``."""
    import types

    return types.SimpleNamespace()
