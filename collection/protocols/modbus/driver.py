"""The Modbus driver: settings from an endpoint (unit id, register map), and the session."""

from __future__ import annotations

from ..driver import Driver, Endpoint
from .session import ModbusSession
from .settings import ModbusSettings

PROTOCOL = "modbus"

# Endpoint.options this driver reads: the unit (slave) id, the meter model's register map and
# the head-end profile's period and tolerance (seconds).
OPTIONS = ("unit_id", "register_map", "profile_period", "profile_tolerance")


def settings_from(endpoint: Endpoint) -> ModbusSettings:
    """Modbus settings of one endpoint; ValueError when they are incomplete."""
    options = endpoint.options
    unit_id = options.get("unit_id")
    if unit_id is None:
        raise ValueError("a Modbus meter needs a unit id")
    return ModbusSettings(
        url=endpoint.url,
        unit_id=int(unit_id),
        register_map=str(options.get("register_map") or ""),
        timeout=float(endpoint.timeout_s),
        baudrate=endpoint.baud_rate,
        exchange_log=endpoint.exchange_log,
        profile_period_s=int(options.get("profile_period") or 900),
        profile_tolerance_s=float(options.get("profile_tolerance") or 60),
    )


DRIVER = Driver(
    protocol=PROTOCOL,
    label="Modbus",
    settings_class=ModbusSettings,
    settings_from=settings_from,
    session_class=ModbusSession,
    capabilities=ModbusSession.capabilities,
    option_names=OPTIONS,
)
