"""Choices of the meters app: grid levels, meter states, protocols, transports, security."""

from django.db import models

from . import obis


class NodeKind(models.TextChoices):
    REGION = "region", "Region"
    SUBSTATION = "substation", "Substation"
    FEEDER = "feeder", "Feeder"
    TRANSFORMER = "transformer", "Distribution transformer"
    SERVICE_POINT = "service_point", "Service point"


# Which kind may stand directly below which (None: a root).
PARENT_KIND = {
    NodeKind.REGION: None,
    NodeKind.SUBSTATION: NodeKind.REGION,
    NodeKind.FEEDER: NodeKind.SUBSTATION,
    NodeKind.TRANSFORMER: NodeKind.FEEDER,
    NodeKind.SERVICE_POINT: NodeKind.TRANSFORMER,
}


class MeterStatus(models.TextChoices):
    IN_STOCK = "in_stock", "In stock"
    INSTALLED = "installed", "Installed"
    ACTIVE = "active", "Active"
    FAULTY = "faulty", "Faulty"
    REMOVED = "removed", "Removed"


class Protocol(models.TextChoices):
    DLMS = "dlms", "DLMS/COSEM"
    IEC62056_21 = "iec62056_21", "IEC 62056-21"
    IEC870_102 = "iec870_102", "IEC 870-5-102"
    MODBUS = "modbus", "Modbus"


class Transport(models.TextChoices):
    TCP = "tcp", "TCP (GPRS/Ethernet/Wi-Fi)"
    SERIAL = "serial", "Serial line (pyserial URL)"
    CONCENTRATOR = "concentrator", "Through its data concentrator"


class DlmsInterface(models.TextChoices):
    WRAPPER = "wrapper", "WRAPPER (TCP)"
    HDLC = "hdlc", "HDLC"


class Security(models.TextChoices):
    NONE = "none", "None (public client)"
    LOW = "low", "Low (password)"
    HIGH = "high", "High (HLS-GMAC)"


class Parity(models.TextChoices):
    NONE = "N", "None"
    EVEN = "E", "Even"
    ODD = "O", "Odd"


class ChannelKind(models.TextChoices):
    REGISTER = "register", "Register"
    PROFILE = "profile", "Load-profile column"
    EVENT_LOG = "event_log", "Event log"
    INSTANTANEOUS = "instantaneous", "Instantaneous value"


class RelayState(models.TextChoices):
    """The supply relay (disconnect control) as a read or a logged event last showed it."""

    CONNECTED = "connected", "Connected"
    DISCONNECTED = "disconnected", "Disconnected"
    READY_FOR_RECONNECTION = "ready_for_reconnection", "Ready for reconnection"


# The states in which the relay is open, so the customer has no supply.
RELAY_OPEN = (RelayState.DISCONNECTED, RelayState.READY_FOR_RECONNECTION)


class Accumulation(models.TextChoices):
    """What a channel's values are: energy per capture period, or a register's running total."""

    INTERVAL = "interval", "Interval (consumption per capture period)"
    CUMULATIVE = "cumulative", "Cumulative (register value at each capture)"


def default_accumulation(obis_code: str) -> str:
    """Cumulative for a running-total register code (D = 8, 9), else interval."""
    return Accumulation.CUMULATIVE if obis.is_cumulative(obis_code) else Accumulation.INTERVAL
