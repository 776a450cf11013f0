"""COSEM objects the client reads and writes, and the value rules it applies (pure).

Logical names as gurux writes them (``A.B.C.D.E.F``) or as the contract reports them
(``A-B:C.D.E*F``); interface classes come from :mod:`.gurux_compat`.
"""

from __future__ import annotations

from decimal import Decimal

from meters import obis as obis_codes

from . import axdr
from .gurux_compat import CLASS_DATA, CLASS_EXTENDED_REGISTER, CLASS_REGISTER

CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
EVENT_LOG = "0.0.99.98.0.255"
DISCONNECT_CONTROL = "0.0.96.3.10.255"
ACTIVITY_CALENDAR = "0.0.13.0.0.255"
INVOCATION_COUNTER = "0.0.43.1.0.255"
ASSOCIATION_LN = "0.0.40.0.0.255"

ENERGY_REGISTERS = (
    "1-0:1.8.0*255",
    "1-0:2.8.0*255",
    "1-0:3.8.0*255",
    "1-0:4.8.0*255",
    "1-0:1.8.1*255",
    "1-0:1.8.2*255",
)
MAXIMUM_DEMAND = "1-0:1.6.0*255"
VOLTAGES = ("1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255")
CURRENTS = ("1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255")
ANGLES = ("1.0.81.7.4.255", "1.0.81.7.15.255", "1.0.81.7.26.255")  # I(Lx)-U(Lx)
FREQUENCY = "1.0.14.7.0.255"
ACTIVE_POWER = "1.0.1.7.0.255"

INITIATE_ERRORS = {
    0: "other",
    1: "dlms-version-too-low",
    2: "incompatible-conformance",
    3: "pdu-size-too-short",
    4: "refused-by-the-VDE-handler",
}
CONTROL_STATES = {0: "disconnected", 1: "connected", 2: "ready_for_reconnection"}
ELECTRICITY = 1  # value group A
MAXIMUM_DEMAND_D = frozenset({6})  # value group D of maximum demand: an extended register


def scale(value: object, scaler: int) -> Decimal | None:
    """Apply a decimal exponent to a raw register value."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if scaler >= 0:
            return Decimal(value * 10**scaler)
        return Decimal(value).scaleb(scaler)
    if isinstance(value, float):
        return Decimal(repr(value)).scaleb(scaler)
    return None


def guess_class(obis: str) -> int:
    """The interface class a register code most likely has on a meter."""
    parts = obis_codes.parse(obis)
    if parts.a == ELECTRICITY and parts.d in MAXIMUM_DEMAND_D:
        return CLASS_EXTENDED_REGISTER
    if parts.a == ELECTRICITY:
        return CLASS_REGISTER
    return CLASS_DATA


# Interface classes not named in gurux_compat, and attribute/method numbers (Blue Book)
CLASS_DEMAND_REGISTER = 5
ATTR_VALUE = 2  # data/register value, clock time
ATTR_SCALER_UNIT = 3  # register, extended and demand register
ATTR_CAPTURE_TIME = 5  # extended register
PROFILE_BUFFER = 2
PROFILE_CAPTURE_OBJECTS = 3
PROFILE_CAPTURE_PERIOD = 4
CAPTURE_OBJECT_FIELDS = 4  # class, logical name, attribute, data index
LOGICAL_NAME_LEN = 6
RANGE_DESCRIPTOR = 1  # selective access by range (profile generic)
STATUS_COLUMN_PREFIX = "0.0.96.10."  # status words captured beside profile values
DISCONNECT_OUTPUT_STATE = 2
DISCONNECT_CONTROL_STATE = 3
DISCONNECT_CONTROL_MODE = 4
METHOD_REMOTE_DISCONNECT = 1
METHOD_REMOTE_RECONNECT = 2
CALENDAR_NAME_PASSIVE = 6
SEASON_PROFILE_PASSIVE = 7
WEEK_PROFILE_TABLE_PASSIVE = 8
DAY_PROFILE_TABLE_PASSIVE = 9
ACTIVATE_PASSIVE_CALENDAR_TIME = 10
METHOD_ACTIVATE_PASSIVE_CALENDAR = 1
NO_PARAMETER = 0  # the integer(0) data of methods that take none
SCALER_REGISTER_CLASSES = frozenset(
    {CLASS_REGISTER, CLASS_EXTENDED_REGISTER, CLASS_DEMAND_REGISTER}
)


def enc_capture_object(class_id: int, logical_name: str, attr: int, data_index: int = 0) -> bytes:
    """A capture object definition (profile generic) or restricting object (range access)."""
    return axdr.enc_struct(
        axdr.enc_uint16(class_id),
        axdr.enc_octets(obis_codes.to_bytes(logical_name)),
        axdr.enc_int8(attr),
        axdr.enc_uint16(data_index),
    )
