"""Command kinds: their parameters (validated), their priority and how a read-back confirms them.

Pure: no Django. `collection.commands.actions` and every door that queues a command
(loadcontrol's API and pages) validate through :func:`clean_parameters`.
"""

from __future__ import annotations

from enum import StrEnum

from collection.protocols import base
from meters import configuration as config

from .configuration import CAPABILITY_OF, SECTION_OF


class Kind(StrEnum):
    RELAY_READ = "relay_read"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    READY_FOR_RECONNECTION = "ready_for_reconnection"
    SET_CLOCK = "set_clock"
    # configuration management: each writes one section and reads it back
    SET_LIMITER = "set_limiter"
    WRITE_TOU = "write_tou"
    CONFIGURE_PROFILE = "configure_profile"
    SET_PUSH_DESTINATION = "set_push_destination"
    SET_CLOCK_SETTINGS = "set_clock_settings"
    SET_COMMUNICATION = "set_communication"
    SET_ALARM_FILTERS = "set_alarm_filters"
    READ_CONFIGURATION = "read_configuration"


LABELS = {
    Kind.RELAY_READ: "Read relay state",
    Kind.CONNECT: "Connect supply",
    Kind.DISCONNECT: "Disconnect supply",
    Kind.READY_FOR_RECONNECTION: "Ready for reconnection (customer's button)",
    Kind.SET_CLOCK: "Set clock",
    Kind.SET_LIMITER: "Set load limiter",
    Kind.WRITE_TOU: "Write TOU calendar and special days",
    Kind.CONFIGURE_PROFILE: "Configure load profile",
    Kind.SET_PUSH_DESTINATION: "Set push destination",
    Kind.SET_CLOCK_SETTINGS: "Set time zone and DST rules",
    Kind.SET_COMMUNICATION: "Set communication parameters",
    Kind.SET_ALARM_FILTERS: "Set alarm filters",
    Kind.READ_CONFIGURATION: "Read configuration",
}

# What the meter's driver must declare for each kind.
CAPABILITY = {
    Kind.RELAY_READ: base.READ_RELAY,
    Kind.CONNECT: base.CONNECT,
    Kind.DISCONNECT: base.DISCONNECT,
    Kind.READY_FOR_RECONNECTION: base.READY_FOR_RECONNECTION,
    Kind.SET_CLOCK: base.SET_CLOCK,
    **{Kind(kind): CAPABILITY_OF[section] for kind, section in SECTION_OF.items()},
    Kind.READ_CONFIGURATION: None,  # reads each section the driver declares
}
# The configuration section each configuration kind writes (meters.configuration).
CONFIG_KINDS = {Kind(kind): section for kind, section in SECTION_OF.items()}
KIND_OF_SECTION = {section: kind for kind, section in CONFIG_KINDS.items()}

# The relay's control state a switching command is confirmed by (read back in the session).
EXPECTED_RELAY = {
    Kind.CONNECT: "connected",
    Kind.DISCONNECT: "disconnected",
    Kind.READY_FOR_RECONNECTION: "ready_for_reconnection",
}
RELAY_KINDS = frozenset({Kind.RELAY_READ, *EXPECTED_RELAY})
# A clock set is confirmed when the clock read back is this close to the head-end's.
CLOCK_TOLERANCE_S = 5.0

# Higher runs first: an emergency disconnect jumps every queue (the meter's and Celery's).
PRIORITY_LOW = 2
PRIORITY_NORMAL = 5
PRIORITY_EMERGENCY = 9

# Parameters each kind accepts: the relay and clock commands take none; a configuration kind
# takes its section's value (checked by meters.configuration.clean); a configuration read
# takes the sections to read. Unknown parameters are an error, never ignored.
PARAMETERS: dict[Kind, frozenset[str]] = {kind: frozenset() for kind in Kind}
PARAMETERS[Kind.READ_CONFIGURATION] = frozenset({"sections"})


class BadCommand(ValueError):
    """A command that cannot be queued: unknown kind or parameters that do not fit it."""

    def __init__(self, message: str, field: str = "parameters") -> None:
        super().__init__(message)
        self.field = field


def clean_kind(kind: str) -> Kind:
    try:
        return Kind(kind)
    except ValueError:
        raise BadCommand(f"unknown command kind {kind!r}", field="kind") from None


def clean_parameters(kind: str, parameters) -> dict:
    """The parameters of a command of `kind`, checked (BadCommand when they do not fit)."""
    kind = clean_kind(kind)
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadCommand("parameters must be an object")
    if kind in CONFIG_KINDS:
        try:
            return config.clean(CONFIG_KINDS[kind], parameters)
        except config.ConfigError as exc:
            raise BadCommand(str(exc)) from None
    unknown = set(parameters) - PARAMETERS[kind]
    if unknown:
        raise BadCommand(f"{kind} takes no parameter {', '.join(sorted(unknown))}")
    if kind == Kind.READ_CONFIGURATION:
        sections = parameters.get("sections", list(CONFIG_KINDS.values()))
        if not isinstance(sections, list) or not set(sections) <= set(CONFIG_KINDS.values()):
            raise BadCommand(f"sections: some of {', '.join(CONFIG_KINDS.values())}")
        return {"sections": [s for s in CONFIG_KINDS.values() if s in sections]}
    return dict(parameters)
