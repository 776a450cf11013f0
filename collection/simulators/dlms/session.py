"""Application layer of one client connection to a simulated meter (sans-IO).

``Session.handle(client_sap, apdu)`` returns the response APDU (or ``None`` to stay silent).
It implements association (none / LLS / HLS-GMAC), ciphering (glo-xxx and
general-glo-ciphering, security suite 0), GET normal/next/with-list with block transfer,
SET normal and with datablocks (block transfer), ACTION normal and release.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ...protocols.dlms import apdu as xdlms
from ...protocols.dlms import axdr
from ...protocols.dlms import security as S
from . import apdu as A
from . import limiter
from .errors import ApduError, InvocationCounterError, SecurityFailure
from .meter import CLIENT_HLS, CLIENT_LLS, CLIENT_PUBLIC, MeterState, SimulatedMeter
from .objects import OBJECTS, AccessError, Ctx

_CIPHER_OVERHEAD = 32  # tag + length + SC + IC + GCM tag (+ system title)
_BLOCK_OVERHEAD = 12
_MAX_SET_DATA = 0x10000  # largest value accepted through SET datablocks


@dataclass
class Session:
    meter: SimulatedMeter
    state: MeterState
    now: Callable[[], datetime]
    server_address: int = 1
    push: Callable[[], None] | None = None
    # The logical device's objects by logical name (None: a meter's, objects.OBJECTS); a
    # concentrator's own logical device adds the data it collected (dlms_gateway.py).
    objects: dict | None = None

    associated: bool = False
    client: int = 0
    mechanism: int = A.MECH_NONE
    ciphered_context: bool = False
    hls_pending: bool = False
    stoc: bytes = b""
    ctos: bytes = b""
    client_title: bytes = b""
    conformance: int = 0
    send_limit: int = 0xFFFF
    blocks: list[bytes] = field(default_factory=list)
    block_no: int = 0
    block_invoke: int = 0
    set_descriptor: A.Descriptor | None = None  # SET with datablocks in progress
    set_data: bytearray = field(default_factory=bytearray)
    set_block_no: int = 0

    # --- entry point ----------------------------------------------------------------------

    def handle(self, client: int, request: bytes) -> bytes | None:
        if not request:
            raise ApduError("empty APDU")
        tag = request[0]
        if tag == A.AARQ:
            return self._aarq(client, request)
        if tag == A.RLRQ:
            info = A.parse_rlrq(request)
            if info and info[0] == xdlms.GLO_INITIATE_REQUEST and self.associated:
                try:  # a protected release: accept its invocation counter
                    self._decrypt(self.client, S.split_ciphered(info).content)
                except (SecurityFailure, ApduError):
                    pass
            self._reset()
            return A.build_rlre()
        if not self.associated or client != self.client:
            return A.exception_response(1, 1)
        if tag in A.GLO_REQUEST_TO_RESPONSE or tag == xdlms.GENERAL_GLO_CIPHERING:
            return self._ciphered(request)
        if self.ciphered_context:
            return A.exception_response(1, 1)  # plain request in a ciphered association
        return self._service(request)

    def _reset(self) -> None:
        self.associated = False
        self.hls_pending = False
        self.blocks = []
        self._end_block_set()

    def _end_block_set(self) -> None:
        self.set_descriptor = None
        self.set_data = bytearray()
        self.set_block_no = 0

    # --- association -----------------------------------------------------------------------

    def _aare_reject(self, context: int, diagnostic: int, user_info: bytes | None = None):
        self._reset()
        return A.build_aare(
            context=context,
            result=A.RESULT_REJECTED_PERMANENT,
            diagnostic=diagnostic,
            system_title=self.meter.system_title,
            user_info=user_info,
        )

    def _aarq(self, client: int, request: bytes) -> bytes:
        self._reset()
        aarq = A.parse_aarq(request)
        ctx_id = aarq.context
        if ctx_id not in (A.CONTEXT_LN, A.CONTEXT_LN_CIPHERED):
            return self._aare_reject(ctx_id, A.DIAG_CONTEXT_NOT_SUPPORTED)
        required = {CLIENT_PUBLIC: A.MECH_NONE, CLIENT_LLS: A.MECH_LLS, CLIENT_HLS: A.MECH_HLS_GMAC}
        if client not in required:
            return self._aare_reject(ctx_id, A.DIAG_NO_REASON)
        if aarq.mechanism != required[client]:
            diag = A.DIAG_AUTHENTICATION_REQUIRED
            if aarq.mechanism not in (A.MECH_NONE, A.MECH_LLS, A.MECH_HLS_GMAC):
                diag = A.DIAG_MECHANISM_NOT_RECOGNISED
            return self._aare_reject(ctx_id, diag)
        if client == CLIENT_HLS and ctx_id != A.CONTEXT_LN_CIPHERED:
            return self._aare_reject(ctx_id, A.DIAG_CONTEXT_NOT_SUPPORTED)
        if aarq.mechanism == A.MECH_LLS and aarq.auth_value != self.meter.password:
            return self._aare_reject(ctx_id, A.DIAG_AUTHENTICATION_FAILURE)
        if aarq.mechanism == A.MECH_HLS_GMAC and not (8 <= len(aarq.auth_value or b"") <= 64):
            return self._aare_reject(ctx_id, A.DIAG_AUTHENTICATION_FAILURE)
        ciphered_initiate = False
        info = aarq.user_info or b""
        self.client_title = aarq.calling_system_title or b""
        self.state.last_client_title = self.client_title
        if info[:1] == bytes((xdlms.GLO_INITIATE_REQUEST,)):
            if ctx_id != A.CONTEXT_LN_CIPHERED or len(self.client_title) != 8:
                return self._aare_reject(ctx_id, A.DIAG_NO_REASON)
            try:
                info = self._decrypt(client, S.split_ciphered(info).content)
            except InvocationCounterError:
                # the AARQ is authentic but replayed/stale: not "authentication failure"
                # (that is reserved for wrong keys) but the xDLMS exception carrying the
                # counter the meter expects, as in the data phase
                self._reset()
                return self._ic_exception(client)
            except (SecurityFailure, ApduError):
                return self._aare_reject(ctx_id, A.DIAG_AUTHENTICATION_FAILURE)
            ciphered_initiate = True
        elif ctx_id == A.CONTEXT_LN_CIPHERED and len(self.client_title) != 8:
            return self._aare_reject(ctx_id, A.DIAG_NO_REASON)
        try:
            ini = A.parse_initiate_request(info)
        except ApduError:
            return self._aare_reject(ctx_id, A.DIAG_NO_REASON)
        if ini.dlms_version < 6:
            return self._aare_reject(
                ctx_id, A.DIAG_NO_REASON, A.confirmed_service_error_initiate(1)
            )
        if 0 < ini.max_pdu < 12:
            return self._aare_reject(
                ctx_id, A.DIAG_NO_REASON, A.confirmed_service_error_initiate(3)
            )
        self.conformance = ini.conformance & A.SERVER_CONFORMANCE
        client_max = ini.max_pdu or 0xFFFF
        self.send_limit = min(client_max, self.meter.max_pdu_size)
        self.client = client
        self.mechanism = aarq.mechanism
        self.ciphered_context = ctx_id == A.CONTEXT_LN_CIPHERED
        self.associated = True
        challenge = None
        diagnostic = A.DIAG_NULL
        if aarq.mechanism == A.MECH_HLS_GMAC:
            diagnostic = A.DIAG_AUTHENTICATION_REQUIRED  # accepted, pass 3/4 to follow
            self.hls_pending = True
            self.ctos = aarq.auth_value or b""
            self.stoc = os.urandom(16)
            challenge = self.stoc
        user_info = A.initiate_response(self.conformance, self.meter.max_pdu_size)
        if ciphered_initiate:
            user_info = S.wrap_glo(xdlms.GLO_INITIATE_RESPONSE, self._encrypt(user_info))
        self.state.sessions += 1
        return A.build_aare(
            context=ctx_id,
            result=A.RESULT_ACCEPTED,
            diagnostic=diagnostic,
            system_title=self.meter.system_title,
            mechanism=aarq.mechanism,
            challenge=challenge,
            user_info=user_info,
        )

    # --- ciphering -------------------------------------------------------------------------

    def _decrypt(self, client: int, content: bytes, title: bytes | None = None) -> bytes:
        m = self.meter
        sc, ic, plain = S.unprotect(title or self.client_title, m.block_key, m.auth_key, content)
        last = self.state.client_ic.get(client)
        if last is not None and ic <= last:
            raise InvocationCounterError(f"invocation counter {ic} not above {last}")
        self.state.client_ic[client] = ic
        return plain

    def _ic_exception(self, client: int) -> bytes:
        """ExceptionResponse(service-not-allowed, invocation-counter-error(expected))."""
        expected = self.state.client_ic.get(client, 0) + 1
        return A.exception_response(1, 6) + expected.to_bytes(4, "big")

    def _encrypt(self, plain: bytes, sc: int = S.SC_AUTH_ENC) -> bytes:
        m = self.meter
        ic = self.state.next_server_ic()
        return S.protect(sc, m.system_title, ic, m.block_key, m.auth_key, plain)

    def _ciphered(self, request: bytes) -> bytes | None:
        c = S.split_ciphered(request)
        if c.system_title is not None and c.system_title and len(c.system_title) != 8:
            raise ApduError("bad system title in general-glo-ciphering")
        content = c.content
        if len(content) < 5:
            raise ApduError("ciphered APDU too short")
        try:
            plain = self._decrypt(self.client, content, c.system_title or None)
        except InvocationCounterError:
            return self._ic_exception(self.client)
        except SecurityFailure:
            return A.exception_response(1, 5)
        sc = content[0]
        response = self._service(plain, ciphered=True)
        if response is None:
            return None
        protected = self._encrypt(response, sc & 0x30 or S.SC_AUTH_ENC)
        if c.tag == xdlms.GENERAL_GLO_CIPHERING:
            return S.wrap_general_glo(self.meter.system_title, protected)
        return S.wrap_glo(A.GLO_REQUEST_TO_RESPONSE[c.tag], protected)

    # --- xDLMS services ----------------------------------------------------------------------

    def _ctx(self) -> Ctx:
        now = self.now()
        limiter.advance(self.meter, self.state, now)  # what happened since the last request
        return Ctx(self.meter, self.state, now, self.client, self.push, self.server_address)

    def _service(self, plain: bytes, ciphered: bool = False) -> bytes | None:
        req = A.parse_request(plain)
        if self.hls_pending:
            d = req.descriptors[0] if req.descriptors else None
            if not (
                req.service == A.ACTION_REQUEST
                and d is not None
                and d.class_id == 15
                and d.obis == bytes((0, 0, 40, 0, 0, 255))
                and d.index == 1
            ):
                return A.exception_response(1, 1)
            return self._hls_reply(req)
        if req.service == A.GET_REQUEST:
            return self._get(req, ciphered)
        if req.service == A.SET_REQUEST:
            if req.kind == 1:
                assert req.data is not None
                return A.set_response(
                    req.invoke_id, self._set(req.descriptors[0], req.data, req.data_raw)
                )
            return self._set_block(req)
        return self._action(req)

    def _lookup(self, class_id: int, obis: bytes):
        obj = (OBJECTS if self.objects is None else self.objects).get(obis)
        if obj is None:
            raise AccessError(xdlms.DAR_OBJECT_UNDEFINED)
        if obj.class_id != class_id:
            raise AccessError(xdlms.DAR_OBJECT_CLASS_INCONSISTENT)
        return obj

    def _get_one(self, ctx: Ctx, d: A.Descriptor) -> tuple[bytes | None, int]:
        try:
            obj = self._lookup(d.class_id, d.obis)
            if d.index == 0:
                raise AccessError(xdlms.DAR_OBJECT_UNAVAILABLE)
            return obj.get(ctx, d.index, d.selector, d.selector_value), 0
        except AccessError as e:
            return None, e.dar

    def _get(self, req: A.Request, ciphered: bool) -> bytes:
        invoke = req.invoke_id
        if req.kind == 2:
            if not self.blocks:
                return A.get_response_block_error(invoke, req.block_number, 16)
            if req.block_number != self.block_no:
                self.blocks = []
                return A.get_response_block_error(invoke, req.block_number, 15)
            chunk = self.blocks.pop(0)
            self.block_no += 1
            return A.get_response_block(invoke, not self.blocks, self.block_no, chunk)
        self.blocks = []
        ctx = self._ctx()
        if req.kind == 1:
            data, dar = self._get_one(ctx, req.descriptors[0])
            response = A.get_response_normal(invoke, data, dar)
            raw = data
        else:
            results = [self._get_one(ctx, d) for d in req.descriptors]
            fault = self.meter.fault
            if fault is not None and fault.kind == "short-list":
                results = [(data, dar) for data, dar in results if data is not None]
            response = A.get_response_list(invoke, results)
            raw = response[3:]
        limit = self.send_limit - (_CIPHER_OVERHEAD if ciphered else 0)
        if len(response) <= limit or raw is None:
            return response
        if not self.conformance & A.conformance_value("block_transfer_with_get"):
            return A.get_response_normal(invoke, None, xdlms.DAR_OTHER_REASON)
        size = max(16, limit - _BLOCK_OVERHEAD)
        self.blocks = [raw[i : i + size] for i in range(0, len(raw), size)]
        self.block_no = 1
        first = self.blocks.pop(0)
        return A.get_response_block(invoke, not self.blocks, 1, first)

    def _set(self, d: A.Descriptor, value: axdr.Value, raw: bytes) -> int:
        if self.client == CLIENT_PUBLIC:
            return xdlms.DAR_READ_WRITE_DENIED
        try:
            obj = self._lookup(d.class_id, d.obis)
            if d.selector is not None:
                raise AccessError(xdlms.DAR_OTHER_REASON)
            obj.set(self._ctx(), d.index, value, raw)
        except AccessError as e:
            return e.dar
        return 0

    def _set_block(self, req: A.Request) -> bytes:
        """SET-request-with-first-datablock (kind 2) / -with-datablock (kind 3)."""
        invoke, number = req.invoke_id, req.block_number

        def fail(dar: int) -> bytes:
            self._end_block_set()
            return A.set_response_last_datablock(invoke, dar, number)

        if req.kind == 2:
            self._end_block_set()
            if self.client == CLIENT_PUBLIC:
                return fail(xdlms.DAR_READ_WRITE_DENIED)
            if number != 1:
                return fail(xdlms.DAR_DATA_BLOCK_NUMBER_INVALID)
            self.set_descriptor = req.descriptors[0]
        elif self.set_descriptor is None:
            return fail(xdlms.DAR_NO_LONG_SET_IN_PROGRESS)
        elif number != self.set_block_no + 1:
            return fail(xdlms.DAR_DATA_BLOCK_NUMBER_INVALID)
        self.set_block_no = number
        self.set_data += req.raw_block
        if len(self.set_data) > _MAX_SET_DATA:
            return fail(xdlms.DAR_LONG_SET_ABORTED)
        if not req.last_block:
            return A.set_response_datablock(invoke, number)
        d, raw = self.set_descriptor, bytes(self.set_data)
        self._end_block_set()
        try:
            value, end = axdr.decode_typed(raw)
            if end != len(raw):
                raise ApduError("trailing bytes after the SET value")
        except ApduError:
            return A.set_response_last_datablock(invoke, xdlms.DAR_TYPE_UNMATCHED, number)
        return A.set_response_last_datablock(invoke, self._set(d, value, raw), number)

    def _action(self, req: A.Request) -> bytes:
        d = req.descriptors[0]
        if self.client == CLIENT_PUBLIC:
            return A.action_response(req.invoke_id, xdlms.DAR_READ_WRITE_DENIED)
        try:
            obj = self._lookup(d.class_id, d.obis)
            if d.class_id == 15:
                raise AccessError(xdlms.DAR_READ_WRITE_DENIED)
            data = obj.action(self._ctx(), d.index, req.data)
        except AccessError as e:
            return A.action_response(req.invoke_id, e.dar)
        return A.action_response(req.invoke_id, 0, data)

    def _hls_reply(self, req: A.Request) -> bytes:
        m = self.meter
        try:
            if req.data is None:
                raise SecurityFailure("no HLS reply data")
            S.verify_hls_reply(
                m.block_key, m.auth_key, self.client_title, self.stoc, req.data.as_bytes()
            )
        except (SecurityFailure, ApduError):
            self._reset()
            return A.action_response(req.invoke_id, xdlms.DAR_READ_WRITE_DENIED)
        self.hls_pending = False
        ic = self.state.next_server_ic()
        f_ctos = S.hls_reply(m.block_key, m.auth_key, m.system_title, ic, self.ctos)
        return A.action_response(req.invoke_id, 0, axdr.enc_octets(f_ctos))
