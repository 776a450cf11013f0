"""The DLMS/COSEM driver: settings from an endpoint, and the session (client + commands)."""

from __future__ import annotations

from ..driver import Driver, Endpoint
from ..transport import line_key
from .commands import DlmsSession
from .concentrator import ConcentratorDataSession
from .push import PUSH
from .settings import DlmsSettings

PROTOCOL = "dlms"

# Endpoint.options this driver reads: HDLC or WRAPPER, and the association's addresses.
OPTIONS = ("interface", "client_address", "server_address", "physical_address")
# Set by the core for a meter read from its concentrator's own data (the endpoint is then
# the concentrator's): the meter's serial and the channel the last probe saw it on.
CONCENTRATOR_OPTIONS = ("dc_serial", "dc_channel")


def settings_from(endpoint: Endpoint) -> DlmsSettings:
    """DLMS settings of one endpoint; ValueError when they are incomplete."""
    options = endpoint.options
    high = endpoint.security == "high"
    client = options.get("client_address")
    return DlmsSettings(
        url=endpoint.url,
        interface=options.get("interface") or "wrapper",
        auth=endpoint.security,
        client_address=client,
        server_address=options.get("server_address") or 1,
        physical_address=options.get("physical_address"),
        password=endpoint.password or None,
        auth_key=endpoint.auth_key or None,
        block_key=endpoint.block_key or None,
        system_title=endpoint.client_system_title if high else None,
        server_system_title=(endpoint.system_title or None) if high else None,
        connect_timeout=float(endpoint.timeout_s),
        response_timeout=float(endpoint.timeout_s),
        hdlc_retries=endpoint.retries,
        baudrate=endpoint.baud_rate,
        counter_key=f"{endpoint.counter_scope}:{client}" if endpoint.counter_scope else None,
        exchange_log=endpoint.exchange_log,
        get_with_list=endpoint.get_with_list,
        dc_serial=options.get("dc_serial") or None,
        dc_channel=options.get("dc_channel") or None,
    )


def open_session(settings: DlmsSettings, counters=None):
    """A meter's own session, or its data at its concentrator (``dc_serial`` set)."""
    if settings.dc_serial:
        return ConcentratorDataSession(settings, counters)
    return DlmsSession(settings, counters)


def line_of(url: str, options) -> str | None:
    """WRAPPER over TCP: every association has its own connection (a meter's modem, or a
    gateway that multiplexes them by wPort): no turns. HDLC, or any serial URL: one line."""
    if url.startswith("tcp://") and (options.get("interface") or "wrapper") == "wrapper":
        return None
    return line_key(url)


DRIVER = Driver(
    protocol=PROTOCOL,
    label="DLMS/COSEM",
    settings_class=DlmsSettings,
    settings_from=settings_from,
    session_class=open_session,
    capabilities=DlmsSession.capabilities,
    option_names=OPTIONS + CONCENTRATOR_OPTIONS,
    push=PUSH,
    line_of=line_of,
)
