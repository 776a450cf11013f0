"""Meter-initiated messages (pushes), protocol-neutral: what a driver's push decoder is.

Sans-IO, no Django. A driver that accepts pushes exposes a :class:`PushDecoder` as its
``push`` attribute (:mod:`.registry` ``push_decoder(protocol)``); the listener
(``collection/push/``) only ever talks to this interface:

1. :meth:`PushDecoder.stream`: a bounded splitter of one connection's byte stream into frames
   (``feed(data) -> list of frames``, ``pending`` bytes held, optional ``errors``: frames
   skipped since the last feed);
2. :meth:`PushDecoder.identify`: a frame -> :class:`Message`: who sent it (an identity kind and
   value the directory looks up) and whether it is protected by the sender's keys;
3. :meth:`PushDecoder.unlock`: verify (and decrypt) a protected message with the sender's keys;
   the listener checks :attr:`Message.counter` against replays only after this succeeded;
4. :meth:`PushDecoder.events`: the unlocked content -> :class:`~.base.MeterEvent` values.

Every step raises only :class:`PushError` (or a subclass) on bad input; ``reason`` is the
listener's rejection reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from .base import MeterEvent

DEFAULT_MAX_FRAME = 4096  # bytes of payload per frame: an alarm push is ~40-70 bytes

# How a message names its sender (the directory's lookup key kinds).
SYSTEM_TITLE = "st"  # an 8-byte title that also keys the message's protection
LOGICAL_DEVICE = "ldn"  # a logical device name (the meter's serial, maybe with a maker prefix)
DEVICE_ADDRESS = "addr"  # a link or device address carried by the frame


# ------------------------------------------------------------------ errors


class PushError(Exception):
    """A push that cannot be accepted; ``reason`` is a PushRejectReason value."""

    reason = "malformed"
    close_connection = False  # True when the byte stream itself can no longer be trusted


class FramingError(PushError):
    """The byte stream is not in the listener's framing: the connection is closed."""

    reason = "framing"
    close_connection = True


class FrameTooLarge(FramingError):
    """A frame announced more bytes than the listener accepts: the connection is closed."""

    reason = "oversize"


class MalformedPush(PushError):
    """The frame was fine but the message or its data could not be decoded."""

    reason = "malformed"


class UnsupportedPush(PushError):
    """A well-formed message that is not a push we understand (e.g. a read request)."""

    reason = "unsupported"


class AnonymousPush(PushError):
    """A well-formed push that names no sender."""

    reason = "unknown_sender"


class AuthenticationFailed(PushError):
    """The authentication tag did not verify: tampered, or the registry holds other keys."""

    reason = "bad_tag"


# ------------------------------------------------------------------ the decoder contract


class Message(NamedTuple):
    """One received push before its sender is known."""

    kind: str  # SYSTEM_TITLE, LOGICAL_DEVICE or DEVICE_ADDRESS
    ident: bytes  # the sender's identity of that kind
    protected: bool  # authenticated with the sender's keys: unlock() before trusting it
    counter: int  # the replay counter of a protected message (0 when not protected)
    body: Any  # the decoder's own: what unlock() and events() need


class PushDecoder:
    """One protocol's meter-initiated messages (see the module doc for the steps)."""

    protocol: str = ""
    interfaces: tuple[str, ...] = ()  # framings stream() knows; the first is the default

    def stream(self, interface: str, max_frame: int = DEFAULT_MAX_FRAME):
        raise NotImplementedError

    def identify(self, frame) -> Message:
        raise NotImplementedError

    def unlock(self, message: Message, sender) -> Any:
        """The verified content of ``message`` (``sender`` carries the endpoint's keys)."""
        raise NotImplementedError

    def events(self, message: Message, content: Any, received_at: datetime) -> list[MeterEvent]:
        raise NotImplementedError


# ------------------------------------------------------------------ hand-off form


def event_to_json(event: MeterEvent) -> dict:
    """The JSON form handed to Celery (collection.handle_push)."""
    return {
        "ts": event.timestamp.isoformat(),
        "code": event.code,
        "log": event.log,
        "data": list(event.data),
    }


def event_from_json(item: dict) -> MeterEvent:
    ts = datetime.fromisoformat(item["ts"])
    if ts.tzinfo is None:
        raise ValueError("push event time must be timezone-aware")
    return MeterEvent(ts, int(item["code"]), str(item["log"]), tuple(item.get("data") or ()))
