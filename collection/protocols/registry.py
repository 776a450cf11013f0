"""Which driver speaks which protocol: the one place the rest of the head-end learns it.

A driver is a settings dataclass, a function that builds those settings from a meter's
endpoint (:class:`Endpoint`, plain values resolved from the registry before any I/O), and a
session class implementing :class:`~collection.protocols.base.MeterSession` with its declared
capabilities. The reader, the targets, the jobs and the on-demand read only ever call
:func:`driver` and :meth:`Driver.open`; none of them names a protocol. The push listener asks
:func:`push_decoder` for the decoder of the protocol it is configured for.

Adding a protocol: a driver package under ``collection/protocols/<name>/`` exposing
``DRIVER``, its simulator, and one line in :data:`DRIVERS` (``docs/adding-a-protocol.md``).
"""

from __future__ import annotations

from . import base
from .dlms.driver import DRIVER as DLMS_DRIVER
from .driver import Driver, Endpoint
from .errors import NotSupported
from .iec870_102.driver import DRIVER as IEC870_102_DRIVER
from .iec62056_21.driver import DRIVER as IEC21_DRIVER
from .modbus.driver import DRIVER as MODBUS_DRIVER
from .push import PushDecoder

__all__ = [
    "DEFAULT_PUSH_PROTOCOL",
    "DRIVERS",
    "Driver",
    "Endpoint",
    "driver",
    "driver_of",
    "line_of",
    "open_session",
    "push_decoder",
    "push_protocols",
    "settings_for",
]

DRIVERS: dict[str, Driver] = {
    DLMS_DRIVER.protocol: DLMS_DRIVER,
    MODBUS_DRIVER.protocol: MODBUS_DRIVER,
    IEC21_DRIVER.protocol: IEC21_DRIVER,
    IEC870_102_DRIVER.protocol: IEC870_102_DRIVER,
}

# What the push listener decodes unless configured otherwise (setting PUSH_PROTOCOL).
DEFAULT_PUSH_PROTOCOL = DLMS_DRIVER.protocol


def driver(protocol: str) -> Driver:
    """The driver of `protocol`; :class:`NotSupported` when none is implemented yet."""
    try:
        return DRIVERS[protocol]
    except KeyError:
        raise NotSupported(f"protocol {protocol!r} has no driver yet") from None


def settings_for(endpoint: Endpoint):
    """The endpoint's protocol settings (ValueError: incomplete; NotSupported: no driver)."""
    return driver(endpoint.protocol).settings_from(endpoint)


def driver_of(settings) -> Driver:
    """The driver whose settings `settings` are."""
    for candidate in DRIVERS.values():
        if isinstance(settings, candidate.settings_class):
            return candidate
    raise NotSupported(f"no driver takes {type(settings).__name__}")


def open_session(settings, counters: base.InvocationCounterStore | None = None):
    """A new session for `settings`, by the driver that owns their type."""
    return driver_of(settings).open(settings, counters)


def line_of(protocol: str, url: str, options) -> str | None:
    """The shared line a meter of `protocol` at `url` is on (None: it needs no turn)."""
    return driver(protocol).line_of(url, options)


def push_protocols() -> list[str]:
    """The protocols whose driver decodes meter-initiated messages."""
    return [name for name, d in DRIVERS.items() if d.push is not None]


def push_decoder(protocol: str | None = None) -> PushDecoder:
    """The push decoder of `protocol` (default :data:`DEFAULT_PUSH_PROTOCOL`).

    :class:`NotSupported` when the protocol has no driver or its driver takes no pushes.
    """
    found = driver(protocol or DEFAULT_PUSH_PROTOCOL)
    if found.push is None:
        raise NotSupported(f"protocol {found.protocol!r} takes no meter-initiated messages")
    return found.push
