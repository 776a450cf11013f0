"""Server-side APDU codec: AARQ/AARE, RLRQ/RLRE, GET/SET/ACTION (LN referencing).

Only what a meter needs: parse requests, build responses.  All parsers raise
``ApduError`` on malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...protocols.dlms import axdr
from ...protocols.dlms.apdu import (  # the tags and result codes both sides share
    AARE,
    AARQ,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    CONFIRMED_SERVICE_ERROR,
    DATA_NOTIFICATION,
    EXCEPTION_RESPONSE,
    GET_REQUEST,
    GET_RESPONSE,
    GLO_ACTION_REQUEST,
    GLO_ACTION_RESPONSE,
    GLO_GET_REQUEST,
    GLO_GET_RESPONSE,
    GLO_SET_REQUEST,
    GLO_SET_RESPONSE,
    INITIATE_REQUEST,
    INITIATE_RESPONSE,
    RLRE,
    RLRQ,
    SET_REQUEST,
    SET_RESPONSE,
    ber_elements,
    ber_encode,
)
from .errors import ApduError

GLO_REQUEST_TO_RESPONSE = {
    GLO_GET_REQUEST: GLO_GET_RESPONSE,
    GLO_SET_REQUEST: GLO_SET_RESPONSE,
    GLO_ACTION_REQUEST: GLO_ACTION_RESPONSE,
}

# application context names (last arc of 2.16.756.5.8.1.x)
CONTEXT_LN, CONTEXT_SN, CONTEXT_LN_CIPHERED, CONTEXT_SN_CIPHERED = 1, 2, 3, 4
_CONTEXT_PREFIX = bytes.fromhex("608574050801")
_MECHANISM_PREFIX = bytes.fromhex("608574050802")
MECH_NONE, MECH_LLS, MECH_HLS, MECH_HLS_MD5, MECH_HLS_SHA1, MECH_HLS_GMAC = 0, 1, 2, 3, 4, 5

# association results / diagnostics (acse-service-user)
RESULT_ACCEPTED, RESULT_REJECTED_PERMANENT, RESULT_REJECTED_TRANSIENT = 0, 1, 2
DIAG_NULL, DIAG_NO_REASON, DIAG_CONTEXT_NOT_SUPPORTED = 0, 1, 2
DIAG_MECHANISM_NOT_RECOGNISED, DIAG_MECHANISM_REQUIRED = 11, 12
DIAG_AUTHENTICATION_FAILURE, DIAG_AUTHENTICATION_REQUIRED = 13, 14


# conformance bits (bit 0 = MSB of the 24-bit field)
CONF = {
    "general_protection": 1,
    "general_block_transfer": 2,
    "read": 3,
    "write": 4,
    "unconfirmed_write": 5,
    "attribute0_with_set": 8,
    "priority_mgmt": 9,
    "attribute0_with_get": 10,
    "block_transfer_with_get": 11,
    "block_transfer_with_set": 12,
    "block_transfer_with_action": 13,
    "multiple_references": 14,
    "information_report": 15,
    "data_notification": 16,
    "access": 17,
    "parameterized_access": 18,
    "get": 19,
    "set": 20,
    "selective_access": 21,
    "event_notification": 22,
    "action": 23,
}


def conformance_value(*names: str) -> int:
    v = 0
    for n in names:
        v |= 1 << (23 - CONF[n])
    return v


SERVER_CONFORMANCE = conformance_value(
    "general_protection",
    "priority_mgmt",
    "block_transfer_with_get",
    "block_transfer_with_set",
    "multiple_references",
    "data_notification",
    "get",
    "set",
    "selective_access",
    "event_notification",
    "action",
)


# --- BER helpers ---------------------------------------------------------------------------


def _ber_elements(buf: bytes) -> list[tuple[int, bytes]]:
    return [(tag, bytes(buf[start:end])) for tag, _at, start, end in ber_elements(buf, 0, len(buf))]


# --- AARQ ----------------------------------------------------------------------------------


@dataclass
class InitiateRequest:
    dlms_version: int
    conformance: int
    max_pdu: int
    dedicated_key: bytes | None = None


@dataclass
class Aarq:
    context: int = CONTEXT_LN
    mechanism: int = MECH_NONE
    calling_system_title: bytes | None = None
    auth_value: bytes | None = None
    user_info: bytes | None = None  # raw xDLMS APDU (InitiateRequest or glo-initiate)


def parse_aarq(apdu: bytes) -> Aarq:
    if len(apdu) < 2 or apdu[0] != AARQ:
        raise ApduError("not an AARQ")
    n, pos = axdr.read_length(apdu, 1)
    if pos + n != len(apdu):
        raise ApduError("AARQ length mismatch")
    out = Aarq()
    seen_context = False
    for tag, content in _ber_elements(apdu[pos:]):
        if tag == 0xA1:
            if len(content) != 9 or content[:2] != b"\x06\x07" or content[2:8] != _CONTEXT_PREFIX:
                raise ApduError("bad application context name")
            out.context = content[8]
            seen_context = True
        elif tag == 0xA6:
            if len(content) < 2 or content[0] != 0x04 or content[1] != len(content) - 2:
                raise ApduError("bad calling AP title")
            out.calling_system_title = content[2:]
        elif tag == 0x8B:
            if len(content) != 7 or content[:6] != _MECHANISM_PREFIX:
                raise ApduError("bad mechanism name")
            out.mechanism = content[6]
        elif tag == 0xAC:
            if len(content) < 2 or content[0] not in (0x80, 0x81):
                raise ApduError("bad calling authentication value")
            n2, p2 = axdr.read_length(content, 1)
            if p2 + n2 != len(content):
                raise ApduError("bad calling authentication value length")
            out.auth_value = content[p2:]
        elif tag == 0xBE:
            if len(content) < 2 or content[0] != 0x04:
                raise ApduError("bad user information")
            n2, p2 = axdr.read_length(content, 1)
            if p2 + n2 != len(content):
                raise ApduError("bad user information length")
            out.user_info = content[p2:]
        # other fields (protocol version, called AP title, ACSE requirements...) ignored
    if not seen_context:
        raise ApduError("AARQ without application context name")
    return out


def parse_initiate_request(b: bytes) -> InitiateRequest:
    if len(b) < 1 or b[0] != INITIATE_REQUEST:
        raise ApduError("not an InitiateRequest")
    pos = 1
    key = None

    def need(n: int) -> None:
        if pos + n > len(b):
            raise ApduError("truncated InitiateRequest")

    need(1)
    if b[pos]:
        need(2)
        klen = b[pos + 1]
        need(2 + klen)
        key = b[pos + 2 : pos + 2 + klen]
        pos += 2 + klen
    else:
        pos += 1
    need(1)
    pos += 2 if b[pos] else 1  # response-allowed
    need(1)
    pos += 2 if b[pos] else 1  # proposed quality of service
    need(1 + 7 + 2)
    version = b[pos]
    pos += 1
    if b[pos : pos + 3] != b"\x5f\x1f\x04":
        raise ApduError("bad conformance block")
    conformance = int.from_bytes(b[pos + 4 : pos + 7], "big")
    pos += 7
    max_pdu = int.from_bytes(b[pos : pos + 2], "big")
    return InitiateRequest(version, conformance, max_pdu, key)


def initiate_response(conformance: int, max_pdu: int) -> bytes:
    return (
        bytes((INITIATE_RESPONSE, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00))
        + conformance.to_bytes(3, "big")
        + max_pdu.to_bytes(2, "big")
        + b"\x00\x07"
    )


def confirmed_service_error_initiate(code: int) -> bytes:
    """ConfirmedServiceError(initiateError, initiate(code)); 1 = dlms-version-too-low."""
    return bytes((CONFIRMED_SERVICE_ERROR, 0x01, 0x06, code))


def build_aare(
    *,
    context: int,
    result: int,
    diagnostic: int,
    system_title: bytes | None = None,
    mechanism: int | None = None,
    challenge: bytes | None = None,
    user_info: bytes | None = None,
) -> bytes:
    body = ber_encode(0xA1, b"\x06\x07" + _CONTEXT_PREFIX + bytes((context,)))
    body += ber_encode(0xA2, b"\x02\x01" + bytes((result,)))
    body += ber_encode(0xA3, ber_encode(0xA1, b"\x02\x01" + bytes((diagnostic,))))
    if system_title is not None:
        body += ber_encode(0xA4, ber_encode(0x04, system_title))
    if mechanism is not None and mechanism != MECH_NONE:
        body += ber_encode(0x88, b"\x07\x80")
        body += ber_encode(0x89, _MECHANISM_PREFIX + bytes((mechanism,)))
        if challenge is not None:
            body += ber_encode(0xAA, ber_encode(0x80, challenge))
    if user_info is not None:
        body += ber_encode(0xBE, ber_encode(0x04, user_info))
    return ber_encode(AARE, body)


def build_rlre(user_info: bytes | None = None) -> bytes:
    body = b"\x80\x01\x00"
    if user_info is not None:
        body += ber_encode(0xBE, ber_encode(0x04, user_info))
    return ber_encode(RLRE, body)


def parse_rlrq(apdu: bytes) -> bytes | None:
    """Validate an RLRQ; return its raw user-information APDU if present."""
    if len(apdu) < 2 or apdu[0] != RLRQ:
        raise ApduError("not an RLRQ")
    n, pos = axdr.read_length(apdu, 1)
    if pos + n != len(apdu):
        raise ApduError("RLRQ length mismatch")
    for tag, content in _ber_elements(apdu[pos:]):
        if tag == 0xBE and len(content) >= 2 and content[0] == 0x04:
            n2, p2 = axdr.read_length(content, 1)
            return content[p2 : p2 + n2]
    return None


def exception_response(state_error: int, service_error: int) -> bytes:
    """ExceptionResponse: state 1 = service-not-allowed, 2 = service-unknown;
    service 1 operation-not-possible, 2 not-supported, 3 other-reason, 6 decipher error,
    7 invocation-counter-error."""
    return bytes((EXCEPTION_RESPONSE, state_error, service_error))


# --- GET / SET / ACTION requests ---------------------------------------------------------


@dataclass
class Descriptor:
    class_id: int
    obis: bytes
    index: int  # attribute or method id
    selector: int | None = None
    selector_value: axdr.Value | None = None


@dataclass
class Request:
    service: int  # GET_REQUEST / SET_REQUEST / ACTION_REQUEST
    kind: int  # 1 normal, 2 next, 3 with-list
    invoke_id: int
    descriptors: list[Descriptor] = field(default_factory=list)
    block_number: int = 0
    data: axdr.Value | None = None  # SET value / ACTION parameter
    data_raw: bytes = b""
    last_block: bool = True  # SET with-(first-)datablock
    raw_block: bytes = b""


def _datablock(b: bytes, pos: int, req: Request) -> int:
    """DataBlock-SA: last-block BOOLEAN, block-number Unsigned32, raw-data OCTET STRING."""
    if pos + 5 > len(b):
        raise ApduError("truncated DataBlock-SA")
    req.last_block = b[pos] != 0
    req.block_number = int.from_bytes(b[pos + 1 : pos + 5], "big")
    n, pos = axdr.read_length(b, pos + 5)
    if pos + n > len(b):
        raise ApduError("truncated DataBlock-SA raw data")
    req.raw_block = bytes(b[pos : pos + n])
    return pos + n


def _descriptor(b: bytes, pos: int, with_selection: bool) -> tuple[Descriptor, int]:
    if pos + 9 > len(b):
        raise ApduError("truncated COSEM descriptor")
    d = Descriptor(int.from_bytes(b[pos : pos + 2], "big"), bytes(b[pos + 2 : pos + 8]), b[pos + 8])
    pos += 9
    if with_selection:
        if pos >= len(b):
            raise ApduError("truncated access selection")
        if b[pos]:
            if pos + 2 > len(b):
                raise ApduError("truncated access selector")
            d.selector = b[pos + 1]
            d.selector_value, pos = axdr.decode_typed(b, pos + 2)
        else:
            pos += 1
    return d, pos


def parse_request(b: bytes) -> Request:
    """Parse a plain GET/SET/ACTION request APDU."""
    if len(b) < 3:
        raise ApduError("request too short")
    service, kind, invoke = b[0], b[1], b[2]
    req = Request(service, kind, invoke)
    pos = 3
    if service == GET_REQUEST:
        if kind == 1:
            d, pos = _descriptor(b, pos, True)
            req.descriptors.append(d)
        elif kind == 2:
            if pos + 4 > len(b):
                raise ApduError("truncated block number")
            req.block_number = int.from_bytes(b[pos : pos + 4], "big")
            pos += 4
        elif kind == 3:
            count, pos = axdr.read_length(b, pos)
            if count == 0 or count > len(b):
                raise ApduError("bad descriptor count")
            for _ in range(count):
                d, pos = _descriptor(b, pos, True)
                req.descriptors.append(d)
        else:
            raise ApduError(f"unsupported GET request type {kind}")
    elif service == SET_REQUEST:
        if kind == 1:
            d, pos = _descriptor(b, pos, True)
            req.descriptors.append(d)
            start = pos
            req.data, pos = axdr.decode_typed(b, pos)
            req.data_raw = bytes(b[start:pos])
        elif kind == 2:  # set-request-with-first-datablock
            d, pos = _descriptor(b, pos, True)
            req.descriptors.append(d)
            pos = _datablock(b, pos, req)
        elif kind == 3:  # set-request-with-datablock
            pos = _datablock(b, pos, req)
        else:
            raise ApduError(f"unsupported SET request type {kind}")
    elif service == ACTION_REQUEST:
        if kind != 1:
            raise ApduError(f"unsupported ACTION request type {kind}")
        d, pos = _descriptor(b, pos, False)
        req.descriptors.append(d)
        if pos >= len(b):
            raise ApduError("truncated ACTION parameters flag")
        if b[pos]:
            req.data, pos = axdr.decode_typed(b, pos + 1)
        else:
            pos += 1
    else:
        raise ApduError(f"not a GET/SET/ACTION request: {service:#x}")
    if pos != len(b):
        raise ApduError("trailing bytes after request")
    return req


def get_response_normal(invoke: int, data: bytes | None, dar: int = 0) -> bytes:
    head = bytes((GET_RESPONSE, 1, invoke))
    return head + (b"\x00" + data if data is not None else bytes((1, dar)))


def get_response_block(invoke: int, last: bool, block: int, raw: bytes) -> bytes:
    return (
        bytes((GET_RESPONSE, 2, invoke, 0xFF if last else 0x00))
        + block.to_bytes(4, "big")
        + b"\x00"
        + axdr.encode_length(len(raw))
        + raw
    )


def get_response_block_error(invoke: int, block: int, dar: int) -> bytes:
    return bytes((GET_RESPONSE, 2, invoke, 0xFF)) + block.to_bytes(4, "big") + bytes((1, dar))


def get_response_list(invoke: int, results: list[tuple[bytes | None, int]]) -> bytes:
    out = bytes((GET_RESPONSE, 3, invoke)) + axdr.encode_length(len(results))
    for data, dar in results:
        out += b"\x00" + data if data is not None else bytes((1, dar))
    return out


def set_response(invoke: int, dar: int) -> bytes:
    return bytes((SET_RESPONSE, 1, invoke, dar))


def set_response_datablock(invoke: int, block: int) -> bytes:
    """Set-Response-Datablock: block ``block`` received, send the next one."""
    return bytes((SET_RESPONSE, 2, invoke)) + block.to_bytes(4, "big")


def set_response_last_datablock(invoke: int, dar: int, block: int) -> bytes:
    return bytes((SET_RESPONSE, 3, invoke, dar)) + block.to_bytes(4, "big")


def action_response(invoke: int, result: int, data: bytes | None = None) -> bytes:
    out = bytes((ACTION_RESPONSE, 1, invoke, result))
    if data is None:
        return out + b"\x00"
    return out + b"\x01\x00" + data


def data_notification(long_invoke_id: int, when: bytes | None, body: bytes) -> bytes:
    """DataNotification APDU; ``when`` is a 12-octet date-time or None."""
    out = bytes((DATA_NOTIFICATION,)) + long_invoke_id.to_bytes(4, "big")
    out += (b"\x0c" + when) if when is not None else b"\x00"
    return out + body
