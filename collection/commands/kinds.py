"""Command kinds: their parameters (validated), their priority and how a read-back confirms them.

Pure: no Django. `collection.commands.actions` and every door that queues a command
(loadcontrol's API and pages) validate through :func:`clean_parameters`.
"""

from __future__ import annotations

from enum import StrEnum

from collection.protocols import base


class Kind(StrEnum):
    RELAY_READ = "relay_read"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    READY_FOR_RECONNECTION = "ready_for_reconnection"
    SET_CLOCK = "set_clock"


LABELS = {
    Kind.RELAY_READ: "Read relay state",
    Kind.CONNECT: "Connect supply",
    Kind.DISCONNECT: "Disconnect supply",
    Kind.READY_FOR_RECONNECTION: "Ready for reconnection (customer's button)",
    Kind.SET_CLOCK: "Set clock",
}

# What the meter's driver must declare for each kind.
CAPABILITY = {
    Kind.RELAY_READ: base.READ_RELAY,
    Kind.CONNECT: base.CONNECT,
    Kind.DISCONNECT: base.DISCONNECT,
    Kind.READY_FOR_RECONNECTION: base.READY_FOR_RECONNECTION,
    Kind.SET_CLOCK: base.SET_CLOCK,
}

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

# Parameters each kind accepts (none so far: the relay and clock commands take none; the
# limiter, TOU and profile kinds will). Unknown parameters are an error, never ignored.
PARAMETERS: dict[Kind, frozenset[str]] = {kind: frozenset() for kind in Kind}


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
    unknown = set(parameters) - PARAMETERS[kind]
    if unknown:
        raise BadCommand(f"{kind} takes no parameter {', '.join(sorted(unknown))}")
    return dict(parameters)
