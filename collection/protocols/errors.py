"""Typed errors raised by every meter protocol implementation.

Each error says whether the head-end may retry the whole exchange
(``retryable``).  Nothing outside this module should need to inspect a
protocol library's own exception types.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of all meter-protocol errors."""

    retryable: bool = False

    def __init__(self, message: str = "", *, retryable: bool | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if retryable is not None:
            self.retryable = retryable


class MeterTimeout(ProtocolError):
    """The meter did not answer (in full) within the configured time."""

    retryable = True


class ConnectionFailed(ProtocolError):
    """The line/socket could not be opened or was closed by the peer."""

    retryable = True


class NotAssociated(ConnectionFailed):
    """A service was asked of a session that is not open (never opened, closed, or dropped
    after an earlier error); a new session may succeed."""


class AuthenticationFailed(ProtocolError):
    """The meter refused the association (wrong password/keys)."""

    retryable = False


class NotSupported(ProtocolError):
    """The meter or the protocol does not offer the requested capability."""

    retryable = False


class FrameError(ProtocolError):
    """A frame failed its checks (FCS/HCS, length, addressing)."""

    retryable = True


class FrameTooLarge(FrameError):
    """A frame is, or announces, more bytes than the framing or the receiver allows."""

    retryable = False


class MalformedResponse(FrameError):
    """A frame was well formed but its content (APDU/data) could not be decoded."""

    retryable = True


class SecurityError(ProtocolError):
    """A ciphered reply failed authentication (bad tag, replayed counter...).

    Permanent for the current session: the session must be dropped.
    """

    retryable = False


class SystemTitleMismatch(SecurityError):
    """The meter answered the association with a system title other than the one registered
    for it: another device (or a swapped meter) holds these keys. Never retried."""

    def __init__(self, expected: bytes, received: bytes | None) -> None:
        got = received.hex().upper() if received else "none"
        super().__init__(f"meter answered system title {got}, registered {expected.hex().upper()}")
        self.expected = expected
        self.received = received


class InvocationCounterRejected(ProtocolError):
    """The meter rejected our invocation counter; recoverable by resynchronising."""

    retryable = True


class AccessDenied(ProtocolError):
    """The meter answered with a data-access error (read/write/action refused)."""

    retryable = False

    def __init__(self, message: str = "", *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class UnknownDevice(ProtocolError):
    """The concentrator answered but does not report the meter asked for (moved, removed,
    not installed yet): no data of it is there to read."""

    retryable = False


__all__ = [
    "UnknownDevice",
    "AccessDenied",
    "AuthenticationFailed",
    "ConnectionFailed",
    "FrameError",
    "FrameTooLarge",
    "InvocationCounterRejected",
    "MalformedResponse",
    "MeterTimeout",
    "NotAssociated",
    "NotSupported",
    "ProtocolError",
    "SecurityError",
    "SystemTitleMismatch",
]
