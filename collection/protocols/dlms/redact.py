"""Where the secrets are in a DLMS APDU, so the frame recorder never keeps them (sans-IO).

The recorder (``link.Recorder``) masks these spans before a frame enters the exchange
log; nothing downstream (run page, API, admin, exports, logs) ever sees the plain bytes,
so nothing downstream has to remember to hide them.

Secret-bearing APDUs:

- AARQ / AARE: calling- and responding-authentication-value (the LLS password; the HLS
  challenges CtoS and StoC).
- ACTION on the association (class 15) reply_to_HLS_authentication / change_HLS_secret,
  and on the security setup (class 64) key transfer / agreement: the method parameters,
  and the data of the action-response that answers them (f(CtoS)).
- SET of the association's secret (class 15 attribute 7) and of the security setup's
  keys: the value.
- The same inside a glo-/general-glo-ciphering APDU that is authenticated only (SC 0x10),
  whose payload is plain text; an encrypted payload reveals nothing and is kept.

Malformed or truncated input never raises: what cannot be parsed is masked from the
point where parsing stopped, if that point lies inside an APDU that can carry secrets.
"""

from __future__ import annotations

import struct

from ..errors import MalformedResponse
from . import framing as fr
from .apdu import (
    AARE,
    AARQ,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    CONFIRMED_SERVICE_ERROR,
    EXCEPTION_RESPONSE,
    GENERAL_GLO_CIPHERING,
    GET_REQUEST,
    GET_RESPONSE,
    RLRE,
    RLRQ,
    SET_REQUEST,
    SET_RESPONSE,
)
from .axdr import read_length

CALLING_AUTH_VALUE, RESPONDING_AUTH_VALUE = 0xAC, 0xAA
CLASS_ASSOCIATION_LN, CLASS_SECURITY_SETUP = 15, 64
# (class, method) pairs whose parameters (and answer) are secrets.
SECRET_METHODS = {(15, 1), (15, 2), (64, 2), (64, 3)}
# (class, attribute) pairs whose value is a secret.
SECRET_ATTRIBUTES = {(15, 7)}
# glo-* and ded-* ciphered APDU tags (0xD8 between them is the plain exception-response),
# glo-initiate request/response and confirmed-service-error, general-glo/ded-ciphering.
GENERAL_DED_CIPHERING = 0xDC
GENERAL_CIPHERING = {GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING}
CIPHERED = frozenset(range(0xC8, 0xD8)) | {0x21, 0x28, 0x2E} | frozenset(GENERAL_CIPHERING)
SC_ENCRYPTED, SC_AUTHENTICATED = 0x20, 0x10
GCM_TAG = 12
MASK = 0x2A  # "*": a masked byte keeps its place, so the frame still reads as a frame

Span = tuple[int, int]


def _ber_length(buf: bytes, pos: int) -> tuple[int, int]:
    """BER/A-XDR length at `pos` -> (length, position after it); raises ValueError."""
    try:
        return read_length(buf, pos)
    except MalformedResponse as exc:  # a ValueError to the callers here, like IndexError
        raise ValueError(str(exc)) from None


def _association_spans(apdu: bytes, offset: int) -> list[Span]:
    spans: list[Span] = []
    try:
        length, pos = _ber_length(apdu, 1)
        end = min(len(apdu), pos + length)
        while pos < end:
            tag = apdu[pos]
            size, content = _ber_length(apdu, pos + 1)
            if tag in (CALLING_AUTH_VALUE, RESPONDING_AUTH_VALUE):
                spans.append((offset + content, offset + min(end, content + size)))
            pos = content + size
    except (IndexError, ValueError):
        spans.append((offset + min(len(apdu), 2), offset + len(apdu)))
    return spans


def _descriptor(apdu: bytes) -> tuple[int, int] | None:
    """(class id, attribute or method id) of a normal SET/ACTION request."""
    if len(apdu) < 13 or apdu[1] != 0x01:
        return None
    return int.from_bytes(apdu[3:5], "big"), apdu[11]


def is_secret_request(apdu: bytes) -> bool:
    """Whether the answer to `apdu` (plain or authenticated-only) carries a secret too."""
    inner = _plain_inside(apdu)
    if inner is not None:
        return is_secret_request(apdu[inner[0] : inner[1]])
    if apdu[:1] == bytes((ACTION_REQUEST,)):
        return _descriptor(apdu) in SECRET_METHODS or len(apdu) < 13
    return False


def _plain_inside(apdu: bytes) -> Span | None:
    """The plain payload of an authenticated-only ciphered APDU (None: not one, or encrypted)."""
    if not apdu or apdu[0] not in CIPHERED:
        return None
    try:
        pos = 1
        if apdu[0] in GENERAL_CIPHERING:
            title_len, pos = _ber_length(apdu, pos)
            pos += title_len
        _length, pos = _ber_length(apdu, pos)
        sc = apdu[pos]
    except (IndexError, ValueError):
        return None
    if sc & SC_ENCRYPTED:
        return None
    end = len(apdu) - (GCM_TAG if sc & SC_AUTHENTICATED else 0)
    return (pos + 5, max(pos + 5, end))


def secret_spans(apdu: bytes, *, answering: bytes | None = None, offset: int = 0) -> list[Span]:
    """Byte ranges of `apdu` that hold secrets; `answering` is the request it replies to."""
    if not apdu:
        return []
    inner = _plain_inside(apdu)
    if inner is not None:
        start, end = inner
        return secret_spans(apdu[start:end], answering=answering, offset=offset + start)
    tag = apdu[0]
    if tag in (AARQ, AARE):
        return _association_spans(apdu, offset)
    if tag == ACTION_REQUEST:
        if _descriptor(apdu) in SECRET_METHODS or len(apdu) < 13:
            return [(offset + min(13, len(apdu)), offset + len(apdu))]
        return []
    if tag == SET_REQUEST:
        if _descriptor(apdu) in SECRET_ATTRIBUTES or len(apdu) < 13:
            return [(offset + min(12, len(apdu)), offset + len(apdu))]
        return []
    if tag == ACTION_RESPONSE and answering is not None and is_secret_request(answering):
        return [(offset + min(4, len(apdu)), offset + len(apdu))]
    return []


def mask(data: bytes, spans: list[Span]) -> bytes:
    out = bytearray(data)
    for start, end in spans:
        for i in range(max(0, start), min(len(out), end)):
            out[i] = MASK
    return bytes(out)


def mask_frame(raw: bytes, spans: list[Span], *, hdlc: bool, secrets=()) -> bytes:
    """`raw` with `spans` masked (an HDLC frame gets a matching frame check sequence, since
    one computed over the secret would let a guess be checked) and every known secret too."""
    data = mask(raw, spans)
    if hdlc and spans:
        data = data[:-3] + struct.pack("<H", fr.crc16(data[1:-3])) + data[-1:]
    for secret in secrets:
        if secret and len(secret) >= 4:
            data = data.replace(secret, bytes([MASK]) * len(secret))
    return data


def scrub_recorded(frames: list[tuple[str, bytes]], secrets=()) -> list[bytes]:
    """Redact frames recorded before the recorder did (the data migration of old logs).

    Without the request boundaries the recorder has, this errs on the side of hiding:
    every segment of a segmented HDLC message, and every frame whose APDU it does not
    recognise, has its whole information field masked.
    """
    out: list[bytes] = []
    last_tx: bytes | None = None
    for direction, raw in frames:
        info_at, apdu, segmented, hdlc = None, b"", False, False
        if raw[:2] == b"\x00\x01" and len(raw) >= 8:
            info_at, apdu = 8, raw[8:]
        elif raw[:1] == b"\x7e" and len(raw) >= 3:
            try:
                frame = fr.hdlc_parse(raw[1:-1])
            except Exception:  # noqa: BLE001 - anything unparsed is hidden entirely
                frame = None
            if frame is None:
                info_at, apdu = 0, raw
            elif frame.info:
                hdlc, segmented = True, frame.segmented
                info_at = len(raw) - 3 - len(frame.info)
                llc = 3 if frame.info[:2] in (b"\xe6\xe6", b"\xe6\xe7") else 0
                info_at, apdu = info_at + llc, frame.info[llc:]
        spans: list[Span] = []
        if info_at is not None:
            answering = last_tx if direction == "rx" else None
            spans = secret_spans(apdu, answering=answering)
            if segmented or (apdu and apdu[0] not in KNOWN_TAGS):
                spans = [(0, len(apdu))]  # a segment: no telling what it holds
            if direction == "tx" and apdu[:1] and apdu[0] in KNOWN_TAGS:
                last_tx = apdu
        spans = [(info_at + a, info_at + b) for a, b in spans] if info_at is not None else []
        out.append(mask_frame(raw, spans, hdlc=hdlc, secrets=secrets))
    return out


# APDU tags a head-end session carries whose layout this module knows (others are hidden
# by scrub_recorded, which cannot tell a continuation segment from an APDU).
KNOWN_TAGS = frozenset(
    {AARQ, AARE, RLRQ, RLRE, GET_REQUEST, SET_REQUEST, ACTION_REQUEST}
    | {GET_RESPONSE, SET_RESPONSE, ACTION_RESPONSE}
    | {EXCEPTION_RESPONSE, CONFIRMED_SERVICE_ERROR}
    | CIPHERED
)
