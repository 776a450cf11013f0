"""The IEC 870-5-102 driver: settings from an endpoint (link address, measuring point, the
password from the meter's encrypted secret), and the session."""

from __future__ import annotations

from ..driver import Driver, Endpoint
from .session import Iec102Session
from .settings import Iec102Settings

PROTOCOL = "iec870_102"

# Endpoint.options this driver reads (the meter's iec102_* columns).
OPTIONS = ("link_address", "measuring_point")


def settings_from(endpoint: Endpoint) -> Iec102Settings:
    """IEC 870-5-102 settings of one endpoint; ValueError when they are incomplete."""
    options = endpoint.options
    link, point = options.get("link_address"), options.get("measuring_point")
    if link is None or point is None:
        raise ValueError("an IEC 870-5-102 meter needs a link address and a measuring point")
    password = (endpoint.password or "").strip()
    if not password.isdigit():
        raise ValueError("an IEC 870-5-102 meter needs its password (a number)")
    return Iec102Settings(
        url=endpoint.url,
        link_address=int(link),
        measuring_point=int(point),
        password=int(password),
        timeout=float(endpoint.timeout_s),
        retries=endpoint.retries,
        baudrate=endpoint.baud_rate,
        exchange_log=endpoint.exchange_log,
    )


DRIVER = Driver(
    protocol=PROTOCOL,
    label="IEC 870-5-102",
    settings_class=Iec102Settings,
    settings_from=settings_from,
    session_class=Iec102Session,
    capabilities=Iec102Session.capabilities,
    option_names=OPTIONS,
)
