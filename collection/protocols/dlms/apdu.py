"""xDLMS/ACSE APDUs (LN referencing), sans-IO: the tags, result codes and BER of both
sides, and the parsing of the responses the client receives.

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

# xDLMS / ACSE APDU tags (IEC 62056-5-3), the same for both sides of an association
AARQ, AARE, RLRQ, RLRE = 0x60, 0x61, 0x62, 0x63
RELEASE_RESPONSE = RLRE
INITIATE_REQUEST, INITIATE_RESPONSE = 0x01, 0x08
CONFIRMED_SERVICE_ERROR = 0x0E
DATA_NOTIFICATION = 0x0F
GLO_INITIATE_REQUEST, GLO_INITIATE_RESPONSE = 0x21, 0x28
GET_REQUEST, SET_REQUEST, ACTION_REQUEST = 0xC0, 0xC1, 0xC3
GET_RESPONSE, SET_RESPONSE, ACTION_RESPONSE = 0xC4, 0xC5, 0xC7
GLO_GET_REQUEST, GLO_SET_REQUEST, GLO_ACTION_REQUEST = 0xC8, 0xC9, 0xCB
GLO_GET_RESPONSE, GLO_SET_RESPONSE, GLO_ACTION_RESPONSE = 0xCC, 0xCD, 0xCF
EXCEPTION_RESPONSE = 0xD8
GENERAL_GLO_CIPHERING = 0xDB

# GET/SET/ACTION kinds (the byte after the service tag)
NORMAL = 1
NEXT = 2  # GET-request-next
WITH_DATABLOCK = 2  # GET-response-with-datablock, SET-request-with-first-datablock
WITH_LIST = 3  # GET-request/response-with-list
LAST_DATABLOCK = 3  # SET-request/response-with-(last-)datablock
# Get-Data-Result and the like: CHOICE { data [0], data-access-result [1] }
RESULT_DATA, RESULT_ACCESS_ERROR = 0, 1
# ACSE / BER tags of the AARQ/AARE fields used here
BER_OCTET_STRING = 0x04
BER_USER_INFORMATION = 0xBE
AARE_RESULT = 0xA2
AARE_RESULT_SOURCE_DIAGNOSTIC = 0xA3
AARE_RESPONDING_AP_TITLE = 0xA4

# data-access-result (and action-result, numbered alike for the values used)
DAR_SUCCESS = 0
DAR_HARDWARE_FAULT = 1
DAR_TEMPORARY_FAILURE = 2
DAR_READ_WRITE_DENIED = 3
DAR_OBJECT_UNDEFINED = 4
DAR_OBJECT_CLASS_INCONSISTENT = 9
DAR_OBJECT_UNAVAILABLE = 11
DAR_TYPE_UNMATCHED = 12
DAR_SCOPE_OF_ACCESS_VIOLATED = 13
DAR_DATA_BLOCK_UNAVAILABLE = 14
DAR_LONG_GET_ABORTED = 15
DAR_NO_LONG_GET_IN_PROGRESS = 16
DAR_LONG_SET_ABORTED = 17
DAR_NO_LONG_SET_IN_PROGRESS = 18
DAR_DATA_BLOCK_NUMBER_INVALID = 19
DAR_OTHER_REASON = 250
# results that mean "this meter has no such object": try another class, or give up
DAR_NOT_THERE = frozenset(
    (DAR_OBJECT_UNDEFINED, DAR_OBJECT_CLASS_INCONSISTENT, DAR_OBJECT_UNAVAILABLE)
)

DATA_ACCESS_RESULTS = {
    DAR_SUCCESS: "success",
    DAR_HARDWARE_FAULT: "hardware-fault",
    DAR_TEMPORARY_FAILURE: "temporary-failure",
    DAR_READ_WRITE_DENIED: "read-write-denied",
    DAR_OBJECT_UNDEFINED: "object-undefined",
    DAR_OBJECT_CLASS_INCONSISTENT: "object-class-inconsistent",
    DAR_OBJECT_UNAVAILABLE: "object-unavailable",
    DAR_TYPE_UNMATCHED: "type-unmatched",
    DAR_SCOPE_OF_ACCESS_VIOLATED: "scope-of-access-violated",
    DAR_DATA_BLOCK_UNAVAILABLE: "data-block-unavailable",
    DAR_LONG_GET_ABORTED: "long-get-aborted",
    DAR_NO_LONG_GET_IN_PROGRESS: "no-long-get-in-progress",
    DAR_LONG_SET_ABORTED: "long-set-aborted",
    DAR_NO_LONG_SET_IN_PROGRESS: "no-long-set-in-progress",
    DAR_DATA_BLOCK_NUMBER_INVALID: "data-block-number-invalid",
    DAR_OTHER_REASON: "other-reason",
}
ACTION_RESULTS = {
    **{k: v for k, v in DATA_ACCESS_RESULTS.items() if k <= DAR_DATA_BLOCK_UNAVAILABLE},
    15: "long-action-aborted",
    16: "no-long-action-in-progress",
    DAR_OTHER_REASON: "other-reason",
}
# exception-response service errors
SERVICE_NOT_SUPPORTED = 2
DECIPHERING_ERROR = 5
INVOCATION_COUNTER_ERROR = 6
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
    if code in DAR_NOT_THERE:
        return NotSupported(f"meter: {text}")
    if code == DAR_TEMPORARY_FAILURE:
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
        if service == INVOCATION_COUNTER_ERROR:
            expected = struct.unpack_from(">I", apdu, 3)[0] if len(apdu) >= 7 else None
            err = InvocationCounterRejected(f"meter rejected invocation counter ({name})")
            err.expected = expected  # type: ignore[attr-defined]
            raise err
        if service == SERVICE_NOT_SUPPORTED:
            raise NotSupported(f"meter: {name}")
        if service == DECIPHERING_ERROR:
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
    if kind == NORMAL:
        choice = apdu[3]
        if choice == RESULT_DATA:
            if len(apdu) < 5:
                raise MalformedResponse("get-response without data")
            return bytes(apdu[4:]), invoke
        if choice == RESULT_ACCESS_ERROR:
            if len(apdu) < 5:
                raise MalformedResponse("truncated data-access-result")
            raise access_error(apdu[4], "get")
        raise MalformedResponse("invalid get-response result choice")
    if kind == WITH_DATABLOCK:
        if len(apdu) < 9:
            raise MalformedResponse("truncated get-response-with-datablock")
        last = apdu[3] != 0
        (number,) = struct.unpack_from(">I", apdu, 4)
        choice = apdu[8]
        if choice == RESULT_DATA:
            n, pos = read_length(apdu, 9)
            if pos + n != len(apdu):
                raise MalformedResponse("datablock raw-data length mismatch")
            return GetBlock(last, number, bytes(apdu[pos:]))
        if choice == RESULT_ACCESS_ERROR:
            if len(apdu) < 10:
                raise MalformedResponse("truncated data-access-result")
            raise access_error(apdu[9], "get (block)")
        raise MalformedResponse("invalid datablock result choice")
    if kind == WITH_LIST:
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
        if choice == RESULT_DATA:
            _value, end = decode(raw, pos)
            out.append(bytes(raw[pos:end]))
            pos = end
        elif choice == RESULT_ACCESS_ERROR:
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
    if kind == NORMAL:
        if apdu[3] != DAR_SUCCESS:
            raise access_error(apdu[3], "set")
        return None
    if kind == WITH_DATABLOCK:
        if len(apdu) < 7:
            raise MalformedResponse("truncated set-response-datablock")
        return struct.unpack_from(">I", apdu, 3)[0]
    if kind == LAST_DATABLOCK:
        if apdu[3] != DAR_SUCCESS:
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
        if code in DAR_NOT_THERE:
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


def ber_encode(tag: int, content: bytes) -> bytes:
    """One BER TLV with a definite length."""
    return bytes((tag,)) + encode_length(len(content)) + content


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
        if tag == AARE_RESULT:  # result: 02 01 xx
            if end - start >= 3:
                result = apdu[end - 1]
        elif tag == AARE_RESULT_SOURCE_DIAGNOSTIC:  # A1|A2 03 02 01 xx
            if end - start >= 5:
                diagnostic = apdu[end - 1]
        elif tag == AARE_RESPONDING_AP_TITLE:  # 04 len title
            inner = ber_elements(apdu, start, end)
            if inner and inner[0][0] == BER_OCTET_STRING:
                title = bytes(apdu[inner[0][2] : inner[0][3]])
        elif tag == BER_USER_INFORMATION:  # 04 len xDLMS-APDU
            inner = ber_elements(apdu, start, end)
            if inner and inner[0][0] == BER_OCTET_STRING:
                user = bytes(apdu[inner[0][2] : inner[0][3]])
                span = (tpos, end)
    if result is None:
        raise MalformedResponse("AARE without result")
    return AareInfo(result, diagnostic, title, user, span)


def replace_aare_user_info(apdu: bytes, info: AareInfo, new_user_info: bytes) -> bytes:
    """Rebuild the AARE with a different user-information payload."""
    if info.user_info_span is None:
        raise MalformedResponse("AARE without user-information to replace")
    start, end = info.user_info_span
    element = ber_encode(BER_USER_INFORMATION, ber_encode(BER_OCTET_STRING, new_user_info))
    _n, pos = read_length(apdu, 1)
    body = bytes(apdu[pos:start]) + element + bytes(apdu[end:])
    return ber_encode(AARE, body)
