"""DLMS/COSEM pushes, sans-IO: bytes in, typed notifications or typed errors out.

No sockets, no Django. Every function here accepts arbitrary bytes and raises only
:class:`~collection.protocols.push.PushError` (or a subclass) on bad input; the hypothesis
tests hold it to that. :data:`PUSH` is the driver's push decoder
(:class:`~collection.protocols.push.PushDecoder`) over these layers.

Layers, outside in:

1. **Stream splitting** (:class:`WrapperStream`, :class:`HdlcStream`): a TCP byte stream into
   APDUs, with a maximum frame size so a connection's buffer stays bounded.
2. **Envelope** (:func:`parse_envelope`): a plain ``data-notification`` (0x0F), or a
   ``general-glo-ciphering`` APDU (0xDB) carrying the sender's system title, security control
   byte and invocation counter. The Green Book has no dedicated glo- tag for data-notification:
   a ciphered push travels in general-glo-ciphering, which is also what names the sender.
3. **Security** (:func:`open_envelope`): suite 0, AES-GCM-128 with the 12-byte tag always
   verified (``cryptography``, through the client's :mod:`.security`);
   authentication-only (SC 0x10) and authenticated encryption (0x30) are accepted, encryption
   without authentication (0x20) is refused.
4. **Notification** (:func:`parse_notification`) and **content** (:func:`events_of`): the
   notification body mapped to :class:`~collection.protocols.base.MeterEvent` values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from ..base import MeterEvent
from ..errors import FrameTooLarge as OversizeFrame
from ..errors import ProtocolError
from ..push import (
    DEFAULT_MAX_FRAME,
    LOGICAL_DEVICE,
    SYSTEM_TITLE,
    AnonymousPush,
    AuthenticationFailed,
    FrameTooLarge,
    FramingError,
    MalformedPush,
    Message,
    PushDecoder,
    PushError,
    UnsupportedPush,
)
from . import axdr, framing
from .apdu import DATA_NOTIFICATION, GENERAL_GLO_CIPHERING
from .security import IC, SC_IC_LEN, SYSTEM_TITLE_LEN, split_ciphered, unprotect

HDLC_OVERHEAD = 16  # format, addresses (up to 4 + 1), control, HCS, FCS around an APDU

ALARM_REGISTER_LOG = "0-0:97.98.{n}*255"  # alarm register 1..4 = 0.0.97.98.0..3.255
# The event code object 0.0.96.11.n.255 is the latest entry of event log 0.0.99.98.n.255
# (standard, fraud detection, disconnector, ...): a pushed code is stored as that log's
# entry, so the same event read from the log later is the same row, not a second event.
EVENT_CODE_LOG = "0-0:99.98.{n}*255"
MAX_ALARM_REGISTERS = 4
MAX_EVENT_CODES = 10

__all__ = [
    "DEFAULT_MAX_FRAME",
    "PUSH",
    "AuthenticationFailed",
    "DlmsPush",
    "FrameTooLarge",
    "FramingError",
    "HdlcStream",
    "MalformedPush",
    "PushError",
    "UnsupportedPush",
    "WrapperStream",
    "events_of",
    "open_envelope",
    "parse_envelope",
    "parse_notification",
]


# ------------------------------------------------------------------ stream splitting


# One APDU as framed on the wire, with the link addresses it came with: source is the WRAPPER
# source wPort / HDLC upper source (server) address, destination the wPort / client address.
Frame = framing.ApduFrame


class WrapperStream:
    """WRAPPER (IEC 62056-47) frames out of a byte stream; buffer <= 8 + max_frame bytes."""

    __slots__ = ("_stream",)

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._stream = framing.WrapperStream(max_frame)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return self._stream.pending

    def feed(self, data: bytes) -> list[Frame]:
        try:
            frames = self._stream.feed(data)
        except OversizeFrame as exc:
            raise FrameTooLarge(str(exc)) from None
        except ProtocolError as exc:
            raise FramingError(str(exc)) from None
        return frames


class HdlcStream:
    """UI frames (IEC 62056-46) out of a byte stream; segmented UI frames are reassembled.

    Garbage between frames is skipped up to the next flag; a frame failing its HCS/FCS is
    reported as :class:`MalformedPush` and skipped. Non-UI frames (SNRM, I, RR...) are
    ignored: a push needs no connection.
    """

    __slots__ = ("_stream", "_segments", "_seg_len", "max_frame", "errors")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._stream = framing.HdlcStream(min(framing.MAX_FRAME, max_frame + HDLC_OVERHEAD))
        self._segments: list[bytes] = []
        self._seg_len = 0
        self.max_frame = max_frame
        self.errors: list[PushError] = []  # skipped frames since the last feed()

    @property
    def pending(self) -> int:
        return self._stream.pending + self._seg_len

    def feed(self, data: bytes) -> list[Frame]:
        self.errors = []
        out: list[Frame] = []
        for frame in self._stream.feed(data):
            if isinstance(frame, ProtocolError):
                self.errors.append(MalformedPush(f"HDLC: {frame}"))
                continue
            if frame.unnumbered != framing.UI:
                continue
            info = frame.info
            if info[:2] == framing.LLC_RESPONSE[:2] or info[:2] == framing.LLC_REQUEST[:2]:
                info = info[framing.LLC_LEN :]
            if frame.segmented or self._segments:
                self._seg_len += len(info)
                if self._seg_len > self.max_frame:
                    self._segments, self._seg_len = [], 0
                    raise FrameTooLarge("segmented HDLC push too large")
                self._segments.append(info)
                if frame.segmented:
                    continue
                info = b"".join(self._segments)
                self._segments, self._seg_len = [], 0
            out.append(Frame(frame.source.upper, frame.destination.upper, info))
        return out


# ------------------------------------------------------------------ envelope and security


@dataclass(frozen=True, slots=True)
class Envelope:
    """A received push APDU before the sender is known."""

    apdu: bytes  # the whole APDU as received
    system_title: bytes | None  # general-glo-ciphering: the sender's system title
    security_control: int = 0
    invocation_counter: int = 0
    content: bytes = b""  # SC || IC || ciphertext || tag (ciphered only)

    @property
    def ciphered(self) -> bool:
        return self.system_title is not None


def parse_envelope(apdu: bytes) -> Envelope:
    """Plain data-notification or general-glo-ciphering; anything else is unsupported."""
    if not apdu:
        raise MalformedPush("empty APDU")
    tag = apdu[0]
    if tag == DATA_NOTIFICATION:
        return Envelope(apdu, None)
    if tag != GENERAL_GLO_CIPHERING:
        raise UnsupportedPush(f"APDU tag 0x{tag:02x} is not a push")
    try:
        ciphered = split_ciphered(apdu)
    except ProtocolError as exc:
        raise MalformedPush(f"general-glo-ciphering: {exc}") from None
    title = ciphered.system_title
    if title is None or len(title) != SYSTEM_TITLE_LEN:
        raise MalformedPush("general-glo-ciphering without an 8-byte system title")
    content = ciphered.content
    if len(content) < SC_IC_LEN:
        raise MalformedPush("ciphered content too short")
    (ic,) = IC.unpack_from(content, 1)
    return Envelope(apdu, title, content[0], ic, content)


def open_envelope(envelope: Envelope, block_key: bytes, auth_key: bytes) -> bytes:
    """Verify the tag and decrypt; return the plain APDU inside."""
    if not envelope.ciphered:
        return envelope.apdu
    try:
        _sc, _ic, plain = unprotect(
            envelope.system_title,
            block_key,
            auth_key,
            envelope.content,
            require_authentication=True,
        )
    except ProtocolError as exc:  # SecurityError: bad tag, short payload, SC refused
        raise AuthenticationFailed(str(exc)) from None
    return plain


# ------------------------------------------------------------------ notification and content


@dataclass(frozen=True, slots=True)
class Value:
    """One top-level element of the notification body, with its A-XDR type tag."""

    tag: int
    value: object


@dataclass(frozen=True, slots=True)
class Notification:
    """A decoded data-notification."""

    long_invoke_id: int
    sent_at: datetime | None  # the optional date-time of the APDU header
    values: tuple[Value, ...]  # the body's structure elements (or the single value)

    @property
    def logical_device_name(self) -> bytes | None:
        """The first element when it is an octet-string other than a date-time (LDN)."""
        if self.values and self.values[0].tag == axdr.OCTET_STRING:
            raw = self.values[0].value
            if isinstance(raw, bytes) and len(raw) != 12:
                return raw
        return None


def _datetime(raw: bytes) -> datetime | None:
    try:
        return axdr.decode_datetime(raw)
    except ProtocolError:
        return None


def parse_notification(apdu: bytes) -> Notification:
    """``0x0F | long-invoke-id (4) | date-time | body`` -> :class:`Notification`.

    The optional date-time is accepted as an A-XDR octet-string (``0x0C`` + 12, as gurux and
    most meters send it), as an OPTIONAL flag (``0x01`` + 12, dlms-cosem), typed (``0x09 0x0C``)
    or absent (``0x00``).
    """
    if len(apdu) < 6 or apdu[0] != DATA_NOTIFICATION:
        raise MalformedPush("not a data-notification")
    (invoke,) = struct.unpack_from(">I", apdu, 1)
    pos = 5
    flag = apdu[pos]
    sent_at = None
    if flag == 0x00:
        pos += 1
    elif flag in (0x0C, 0x01) or (flag == 0x09 and apdu[pos + 1 : pos + 2] == b"\x0c"):
        pos += 2 if flag == 0x09 else 1
        if pos + 12 > len(apdu):
            raise MalformedPush("truncated notification date-time")
        sent_at = _datetime(bytes(apdu[pos : pos + 12]))
        pos += 12
    else:
        raise MalformedPush("invalid notification date-time")
    body = bytes(apdu[pos:])
    if not body:
        raise MalformedPush("empty notification body")
    try:
        values = _top_level(body)
    except ProtocolError as exc:  # MalformedResponse from the A-XDR decoder
        raise MalformedPush(f"notification body: {exc}") from None
    return Notification(invoke, sent_at, values)


def _top_level(body: bytes) -> tuple[Value, ...]:
    if body[0] != axdr.STRUCTURE:
        value, end = axdr.decode(body, 0)
        if end != len(body):
            raise MalformedPush("trailing bytes after notification body")
        return (Value(body[0], value),)
    count, pos = axdr.read_length(body, 1)
    if count > len(body) - pos:
        raise MalformedPush("element count exceeds body")
    out = []
    for _ in range(count):
        if pos >= len(body):
            raise MalformedPush("truncated notification body")
        tag = body[pos]
        value, pos = axdr.decode(body, pos)
        out.append(Value(tag, value))
    if pos != len(body):
        raise MalformedPush("trailing bytes after notification body")
    return tuple(out)


def capture_time(notification: Notification) -> datetime | None:
    """The first date-time in the body (a clock push object), else the header date-time."""
    for v in notification.values:
        if (v.tag == axdr.OCTET_STRING and isinstance(v.value, bytes) and len(v.value) == 12) or (
            v.tag == axdr.DATE_TIME
        ):
            found = _datetime(v.value)
            if found is not None:
                return found
    return notification.sent_at


def events_of(notification: Notification, received_at: datetime) -> list[MeterEvent]:
    """The events a notification reports.

    What is understood (push objects of the alarm push, 0.0.25.9.0.255 in IDIS and in our
    simulator: logical device name, alarm register 1, clock):

    * the k-th ``double-long-unsigned`` (u32) element is alarm register k
      (``0-0:97.98.<k-1>*255``, k <= 4): one event per set bit, ``code`` = bit number
      (0 = least significant), ``data`` = (register value,). An alarm register of 0 reports
      nothing.
    * the k-th ``unsigned``/``long-unsigned`` element is an event code object (0.0.96.11.<k-1>,
      the latest entry of event log ``0-0:99.98.<k-1>*255``, where it is stored): one event,
      ``code`` = the value.
    * other elements (LDN, date-times, structures) carry no event.

    The time of every event is :func:`capture_time`, else ``received_at``.
    """
    ts = capture_time(notification) or received_at
    events: list[MeterEvent] = []
    alarms = codes = 0
    for v in notification.values:
        if v.tag == axdr.UINT32 and alarms < MAX_ALARM_REGISTERS:
            log = ALARM_REGISTER_LOG.format(n=alarms)
            alarms += 1
            word = int(v.value)
            for bit in range(32):
                if word >> bit & 1:
                    events.append(MeterEvent(ts, bit, log, (word,)))
        elif v.tag in (axdr.UINT8, axdr.UINT16) and codes < MAX_EVENT_CODES:
            events.append(MeterEvent(ts, int(v.value), EVENT_CODE_LOG.format(n=codes)))
            codes += 1
    return events


# ------------------------------------------------------------------ the driver's decoder


class DlmsPush(PushDecoder):
    """Data notifications over WRAPPER or HDLC (UI frames), plain or general-glo-ciphered.

    A ciphered push names its sender by the system title of its header and is protected by
    that meter's keys (its invocation counter guards against replays); a plain push by the
    logical device name, the first element of its body.
    """

    protocol = "dlms"
    interfaces = ("wrapper", "hdlc")

    def stream(self, interface: str, max_frame: int = DEFAULT_MAX_FRAME):
        if interface == "wrapper":
            return WrapperStream(max_frame)
        if interface == "hdlc":
            return HdlcStream(max_frame)
        raise ValueError(f"interface must be one of {', '.join(self.interfaces)}")

    def identify(self, frame: Frame) -> Message:
        envelope = parse_envelope(frame.apdu)
        title = envelope.system_title
        if title is not None:
            return Message(SYSTEM_TITLE, title, True, envelope.invocation_counter, envelope)
        notification = parse_notification(envelope.apdu)
        ident = notification.logical_device_name
        if not ident:
            raise AnonymousPush("plain push without a logical device name")
        return Message(LOGICAL_DEVICE, ident, False, 0, notification)

    def unlock(self, message: Message, sender) -> bytes | Notification:
        if not message.protected:
            return message.body
        return open_envelope(message.body, sender.block_key, sender.auth_key)

    def events(
        self, message: Message, content: bytes | Notification, received_at: datetime
    ) -> list[MeterEvent]:
        notification = parse_notification(content) if message.protected else content
        return events_of(notification, received_at)


PUSH = DlmsPush()
