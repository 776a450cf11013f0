"""The IEC 62056-21 driver: settings from an endpoint (device address, P1 password, clock
plug-in), and the session."""

from __future__ import annotations

from ..driver import Driver, Endpoint
from .session import Iec21Session
from .settings import Iec21Settings

PROTOCOL = "iec62056_21"

# Endpoint.options this driver reads: the sign-on device address and the model's clock and
# profile plug-ins.
OPTIONS = ("address", "clock", "profile")


def settings_from(endpoint: Endpoint) -> Iec21Settings:
    """IEC 62056-21 settings of one endpoint; ValueError when they are invalid."""
    options = endpoint.options
    return Iec21Settings(
        url=endpoint.url,
        address=str(options.get("address") or ""),
        password=endpoint.password or None,
        timeout=float(endpoint.timeout_s),
        max_baudrate=endpoint.baud_rate,  # the line's rate: the baud switch goes no higher
        clock=str(options.get("clock") or "standard"),
        time_zone=endpoint.time_zone,
        profile=str(options.get("profile") or "generic"),
        exchange_log=endpoint.exchange_log,
    )


DRIVER = Driver(
    protocol=PROTOCOL,
    label="IEC 62056-21",
    settings_class=Iec21Settings,
    settings_from=settings_from,
    session_class=Iec21Session,
    capabilities=Iec21Session.capabilities,
    option_names=OPTIONS,
)
