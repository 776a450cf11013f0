"""Parsing of xDLMS response APDUs (LN referencing), sans-IO.

Entry points accept any bytes and raise only :class:`ProtocolError`
subclasses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import (
    AccessDenied,
    AuthenticationFailed,
    InvocationCounterRejected,
    MalformedResponse,
    NotSupported,
    ProtocolError,
)
from .axdr import decode, encode_length, read_length

GET_RESPONSE = 0xC4
SET_RESPONSE = 0xC5
ACTION_RESPONSE = 0xC7
EXCEPTION_RESPONSE = 0xD8
CONFIRMED_SERVICE_ERROR = 0x0E
RELEASE_RESPONSE = 0x63
AARE = 0x61

DATA_ACCESS_RESULTS = {
    0: "success",
    1: "hardware-fault",
    2: "temporary-failure",
    3: "read-write-denied",
    4: "object-undefined",
    9: "object-class-inconsistent",
    11: "object-unavailable",
    12: "type-unmatched",
    13: "scope-of-access-violated",
    14: "data-block-unavailable",
    15: "long-get-aborted",
    16: "no-long-get-in-progress",
    17: "long-set-aborted",
    18: "no-long-set-in-progress",
    19: "data-block-number-invalid",
    250: "other-reason",
}
ACTION_RESULTS = {
    0: "success",
    1: "hardware-fault",
    2: "temporary-failure",
    3: "read-write-denied",
    4: "object-undefined",
    9: "object-class-inconsistent",
    11: "object-unavailable",
    12: "type-unmatched",
    13: "scope-of-access-violated",
    14: "data-block-unavailable",
    15: "long-action-aborted",
    16: "no-long-action-in-progress",
    250: "other-reason",
}
EXCEPTION_SERVICE_ERRORS = {
    1: "operation-not-possible",
    2: "service-not-supported",
    3: "other-reason",
    4: "pdu-too-long",
    5: "deciphering-error",
    6: "invocation-counter-error",
}


def access_error(code: int, what: str = "") -> ProtocolError:
    name = DATA_ACCESS_RESULTS.get(code, f"result {code}")
    text = f"{what}: {name}" if what else name
    if code in (4, 9, 11):
        return NotSupported(f"meter: {text}")
    if code == 2:
        return ProtocolError(f"meter: {text}", retryable=True)
    return AccessDenied(f"meter: {text}", code=code)


def check_common(apdu: bytes) -> None:
    """Raise the typed error for exception/service-error APDUs."""
    if not apdu:
        raise MalformedResponse("empty APDU")
    tag = apdu[0]
    if tag == EXCEPTION_RESPONSE:
        if len(apdu) < 3:
            raise MalformedResponse("truncated exception-response")
        state, service = apdu[1], apdu[2]
        name = EXCEPTION_SERVICE_ERRORS.get(service, f"service error {service}")
        if service == 6:
            expected = struct.unpack_from(">I", apdu, 3)[0] if len(apdu) >= 7 else None
            err = InvocationCounterRejected(f"meter rejected invocation counter ({name})")
            err.expected = expected  # type: ignore[attr-defined]
            raise err
        if service == 2:
            raise NotSupported(f"meter: {name}")
        if service == 5:
            raise AuthenticationFailed(f"meter could not decipher our request ({name})")
        raise ProtocolError(f"meter exception-response: state {state}, {name}", retryable=False)
    if tag == CONFIRMED_SERVICE_ERROR:
        raise ProtocolError(f"meter confirmed-service-error {apdu[1:4].hex()}", retryable=False)


@dataclass(frozen=True, slots=True)
class GetBlock:
    last: bool
    number: int
    raw: bytes


def parse_get_response(apdu: bytes) -> tuple[bytes, int] | GetBlock:
    """GET-response -> ``(data_bytes, invoke_id)`` or a :class:`GetBlock`.

    ``data_bytes`` is the A-XDR encoded value, not decoded here so callers
    can use a specialised decoder (e.g. for profile buffers); for a
    get-response-with-list it is a :class:`ListBody` (see
    :func:`parse_list_results`).
    """
    check_common(apdu)
    if len(apdu) < 4 or apdu[0] != GET_RESPONSE:
        raise MalformedResponse(f"expected get-response, got {apdu[:1].hex() or 'nothing'}")
    kind, invoke = apdu[1], apdu[2]
    if kind == 1:
        choice = apdu[3]
        if choice == 0:
            if len(apdu) < 5:
                raise MalformedResponse("get-response without data")
            return bytes(apdu[4:]), invoke
        if choice == 1:
            if len(apdu) < 5:
                raise MalformedResponse("truncated data-access-result")
            raise access_error(apdu[4], "get")
        raise MalformedResponse("invalid get-response result choice")
    if kind == 2:
        if len(apdu) < 9:
            raise MalformedResponse("truncated get-response-with-datablock")
        last = apdu[3] != 0
        (number,) = struct.unpack_from(">I", apdu, 4)
        choice = apdu[8]
        if choice == 0:
            n, pos = read_length(apdu, 9)
            if pos + n != len(apdu):
                raise MalformedResponse("datablock raw-data length mismatch")
            return GetBlock(last, number, bytes(apdu[pos:]))
        if choice == 1:
            if len(apdu) < 10:
                raise MalformedResponse("truncated data-access-result")
            raise access_error(apdu[9], "get (block)")
        raise MalformedResponse("invalid datablock result choice")
    if kind == 3:
        return ListBody(bytes(apdu[3:])), invoke
    raise MalformedResponse(f"unknown get-response type {kind}")


class ListBody(bytes):
    """Body of a get-response-with-list: count + Get-Data-Results."""


def parse_list_results(raw: bytes) -> list[bytes | int]:
    """``count {00 data | 01 dar}*`` -> list of raw A-XDR data or DAR codes."""
    count, pos = read_length(raw, 0)
    if count > len(raw):
        raise MalformedResponse("with-list count exceeds data")
    out: list[bytes | int] = []
    for _ in range(count):
        if pos >= len(raw):
            raise MalformedResponse("truncated with-list result")
        choice = raw[pos]
        pos += 1
        if choice == 0:
            _value, end = decode(raw, pos)
            out.append(bytes(raw[pos:end]))
            pos = end
        elif choice == 1:
            if pos >= len(raw):
                raise MalformedResponse("truncated with-list data-access-result")
            out.append(raw[pos])
            pos += 1
        else:
            raise MalformedResponse("invalid with-list result choice")
    if pos != len(raw):
        raise MalformedResponse("trailing bytes after with-list results")
    return out


def parse_set_response(apdu: bytes) -> int | None:
    """SET-response. Returns the acknowledged block number for block acks,
    ``None`` when the set completed; raises on a failure result."""
    check_common(apdu)
    if len(apdu) < 4 or apdu[0] != SET_RESPONSE:
        raise MalformedResponse(f"expected set-response, got {apdu[:1].hex() or 'nothing'}")
    kind = apdu[1]
    if kind == 1:
        if apdu[3] != 0:
            raise access_error(apdu[3], "set")
        return None
    if kind == 2:
        if len(apdu) < 7:
            raise MalformedResponse("truncated set-response-datablock")
        return struct.unpack_from(">I", apdu, 3)[0]
    if kind == 3:
        if apdu[3] != 0:
            raise access_error(apdu[3], "set (last block)")
        return None
    raise MalformedResponse(f"unknown set-response type {kind}")


def parse_action_response(apdu: bytes) -> object:
    """ACTION-response-normal -> decoded return parameters (or None)."""
    check_common(apdu)
    if len(apdu) < 4 or apdu[0] != ACTION_RESPONSE:
        raise MalformedResponse(f"expected action-response, got {apdu[:1].hex() or 'nothing'}")
    kind = apdu[1]
    if kind != 1:
        raise NotSupported(f"action-response type {kind} not supported")
    result = apdu[3]
    if result != 0:
        code = result
        name = ACTION_RESULTS.get(code, f"result {code}")
        if code in (4, 9, 11):
            raise NotSupported(f"meter: action: {name}")
        raise AccessDenied(f"meter: action: {name}", code=code)
    if len(apdu) <= 4 or apdu[4] == 0:
        return None
    if len(apdu) < 6:
        raise MalformedResponse("truncated action return parameters")
    if apdu[5] == 0:
        value, pos = decode(apdu, 6)
        if pos != len(apdu):
            raise MalformedResponse("trailing bytes in action-response")
        return value
    if apdu[5] == 1:
        if len(apdu) < 7:
            raise MalformedResponse("truncated action data-access-result")
        raise access_error(apdu[6], "action")
    raise MalformedResponse("invalid action return choice")


# ----------------------------------------------------------------- AARE (BER)


def ber_elements(buf: bytes, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """List (tag, tag position, value start, value end) of the TLVs in buf[pos:end]."""
    out = []
    while pos < end:
        tag = buf[pos]
        n, vpos = read_length(buf, pos + 1)
        if vpos + n > end:
            raise MalformedResponse("BER element exceeds its container")
        out.append((tag, pos, vpos, vpos + n))
        pos = vpos + n
    return out


@dataclass(frozen=True, slots=True)
class AareInfo:
    result: int
    diagnostic: int | None
    server_title: bytes | None
    user_info: bytes | None  # content of the user-information octet string
    user_info_span: tuple[int, int] | None  # span of BE element in the AARE


def parse_aare(apdu: bytes) -> AareInfo:
    if len(apdu) < 2 or apdu[0] != AARE:
        raise MalformedResponse(f"expected AARE, got {apdu[:1].hex() or 'nothing'}")
    n, pos = read_length(apdu, 1)
    if pos + n != len(apdu):
        raise MalformedResponse("AARE length mismatch")
    result = None
    diagnostic = None
    title = None
    user = None
    span = None
    for tag, tpos, start, end in ber_elements(apdu, pos, pos + n):
        if tag == 0xA2:  # result: 02 01 xx
            if end - start >= 3:
                result = apdu[end - 1]
        elif tag == 0xA3:  # result-source-diagnostic: A1|A2 03 02 01 xx
            if end - start >= 5:
                diagnostic = apdu[end - 1]
        elif tag == 0xA4:  # responding-AP-title: 04 len title
            inner = ber_elements(apdu, start, end)
            if inner and inner[0][0] == 0x04:
                title = bytes(apdu[inner[0][2] : inner[0][3]])
        elif tag == 0xBE:  # user-information: 04 len xDLMS-APDU
            inner = ber_elements(apdu, start, end)
            if inner and inner[0][0] == 0x04:
                user = bytes(apdu[inner[0][2] : inner[0][3]])
                span = (tpos, end)
    if result is None:
        raise MalformedResponse("AARE without result")
    return AareInfo(result, diagnostic, title, user, span)


def replace_aare_user_info(apdu: bytes, info: AareInfo, new_user_info: bytes) -> bytes:
    """Rebuild the AARE with a different user-information payload."""
    assert info.user_info_span is not None
    start, end = info.user_info_span
    inner = b"\x04" + encode_length(len(new_user_info)) + new_user_info
    element = b"\xbe" + encode_length(len(inner)) + inner
    _n, pos = read_length(apdu, 1)
    body = bytes(apdu[pos:start]) + element + bytes(apdu[end:])
    return b"\x61" + encode_length(len(body)) + body
