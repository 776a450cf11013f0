"""What a protocol driver is: its settings, how they come from an endpoint, its session.

Plain values only (no Django): :class:`Endpoint` is resolved from the registry by
``collection/targets.py`` before any I/O; :class:`Driver` is what each protocol package
exposes as ``DRIVER`` and :mod:`.registry` maps protocol names to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import base
from .push import PushDecoder
from .transport import line_key


def own_url_line(url: str, options: Mapping[str, Any]) -> str | None:
    """The default: every URL is a line (a serial port, a TCP-serial converter, a Modbus
    gateway): sessions through one URL take turns."""
    return line_key(url)


@dataclass(frozen=True)
class Endpoint:
    """How to reach one meter, as plain values: what every driver gets to build its settings.

    ``options`` holds the protocol's own addressing (names the driver defines, e.g. a logical
    device or a unit id); everything else is common to every protocol.
    """

    protocol: str
    url: str  # tcp://host:port or a pyserial URL
    security: str = "none"  # "none" | "low" | "high"
    password: str | None = None
    auth_key: bytes | None = field(default=None, repr=False)
    block_key: bytes | None = field(default=None, repr=False)
    system_title: bytes | None = None  # the meter's own title, when it has one
    client_system_title: bytes | None = None  # the head-end's title towards this meter
    timeout_s: float = 30.0
    retries: int = 2
    baud_rate: int = 9600
    options: Mapping[str, Any] = field(default_factory=dict)
    counter_scope: str = ""  # stable per-meter prefix for persistent counters ("meter:12")
    get_with_list: bool = True  # the meter model answers multi-value requests correctly
    # The utility's zone (AMI_TIME_ZONE), for meters whose clock runs on local time.
    time_zone: str = "UTC"
    exchange_log: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


@dataclass(frozen=True)
class Driver:
    """One protocol: its settings, how they come from an endpoint, and its session."""

    protocol: str
    label: str
    settings_class: type
    settings_from: Callable[[Endpoint], Any]  # raises ValueError on incomplete settings
    session_class: Callable[..., base.MeterSession]
    capabilities: frozenset[str]
    option_names: tuple[str, ...] = ()  # the keys of Endpoint.options this driver reads
    push: PushDecoder | None = None  # meter-initiated messages, when the protocol has them
    # The shared line a meter at (url, options) is on, or None when its sessions need no turn
    # (each has a connection of its own that the far end multiplexes). Sessions on one line
    # take turns (collection/reader.py) and one job's meters of a line are read in one batch.
    line_of: Callable[[str, Mapping[str, Any]], str | None] = own_url_line

    def open(self, settings, counters: base.InvocationCounterStore | None = None):
        """A new, not yet opened session (``async with driver.open(s, c) as meter: ...``)."""
        if not isinstance(settings, self.settings_class):
            raise TypeError(f"{self.protocol} driver needs {self.settings_class.__name__}")
        return self.session_class(settings, counters)

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities
