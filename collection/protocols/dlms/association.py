"""One DLMS/COSEM association over WRAPPER or HDLC: open, cipher, GET/SET/ACTION, close.

The layer under the contract (:mod:`.client`): transport and link, the association (LLS,
HLS-GMAC), the invocation counter and its recovery, and the xDLMS services with block
transfer and GET-with-list. Requests are built by gurux (:mod:`.gurux_compat`), answers
parsed by the shared codec (:mod:`.apdu`, :mod:`.axdr`, :mod:`.security`).
"""

from __future__ import annotations

import contextlib
import struct

from ..base import InvocationCounterStore, MemoryInvocationCounterStore
from ..errors import (
    AccessDenied,
    AuthenticationFailed,
    InvocationCounterRejected,
    MalformedResponse,
    NotAssociated,
    NotSupported,
    ProtocolError,
    SecurityError,
    SystemTitleMismatch,
)
from ..transport import open_transport
from . import apdu as ap
from . import axdr
from .cosem import ASSOCIATION_LN, INITIATE_ERRORS, INVOCATION_COUNTER
from .gurux_compat import CLASS_ASSOCIATION_LN, CLASS_DATA, GuruxApdu
from .link import HdlcLink, Link, WrapperLink
from .security import CIPHERED_TAGS, ERRORS_IN_ANY_GLO, Cipherer, hls_reply, verify_hls_reply
from .settings import DlmsSettings

MAX_BLOCKS = 10_000  # blocks of one GET before the answer is refused as endless
CIPHERING_OVERHEAD = 32  # glo- tag, length, SC, IC, GCM tag: room left in a ciphered PDU
MIN_REQUEST_PDU = 64
HLS_REPLY_METHOD = 1  # association LN method reply_to_HLS_authentication
ASSOCIATION_ACCEPTED = 0  # AARE result
# AARE diagnostics a meter gives a stale invocation counter as readily as a wrong key
DIAG_NO_REASON, DIAG_AUTHENTICATION_FAILURE = 1, 13


class DlmsAssociation:
    """One DLMS/COSEM association (LN referencing) over WRAPPER or HDLC.

    Not thread-safe; meant for one asyncio task at a time.
    """

    def __init__(
        self,
        settings: DlmsSettings,
        counter_store: InvocationCounterStore | None = None,
    ) -> None:
        self.settings = settings
        self.counters = counter_store or MemoryInvocationCounterStore(settings.invocation_counter)
        self.exchange_log = [] if settings.exchange_log else None
        self._transport = None
        self._link: Link | None = None
        self._gx: GuruxApdu | None = None
        self._cipher: Cipherer | None = None
        self._ic_next = 0
        self._ic_end = 0
        self._recovered = False
        self._last_used_ic: int | None = None
        self.associated = False
        self.max_pdu = settings.max_pdu
        # Why GET-with-list was given up for single GETs in this session (None: it was not).
        self.with_list_failure: str | None = None

    async def __aenter__(self):
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _requests(self) -> GuruxApdu:
        """The request builder of the open association (NotAssociated when there is none)."""
        if self._gx is None:
            raise NotAssociated("session is not open")
        return self._gx

    # ------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        try:
            try:
                await self._open_once()
            except (InvocationCounterRejected, AuthenticationFailed) as ex:
                await self._abort()
                if not self._counter_suspect(ex):
                    raise
                try:
                    recovered = await self._recover_counter()
                except ProtocolError as recovery_error:
                    raise ex from recovery_error
                if not recovered:
                    raise
                await self._open_once()
        except BaseException:
            await self._abort()
            raise

    def _counter_suspect(self, ex: ProtocolError) -> bool:
        """May this error be a stale invocation counter we can recover from?"""
        if not self.settings.ciphered or self._recovered:
            return False
        # Meters commonly reject a replayed AARQ counter like a bad key
        # (AARE "authentication failure"); _recover_counter tells them apart.
        return isinstance(ex, InvocationCounterRejected) or getattr(ex, "at_aarq", False)

    async def close(self) -> None:
        try:
            if self.associated and self._link is not None and self._gx is not None:
                with contextlib.suppress(ProtocolError, Exception):
                    rlrq = self._gx.release()
                    if rlrq:
                        await self._link.request(rlrq)
            if self._link is not None:
                with contextlib.suppress(ProtocolError, Exception):
                    await self._link.disconnect()
        finally:
            await self._abort()

    async def _abort(self) -> None:
        self.associated = False
        transport, self._transport, self._link = self._transport, None, None
        if transport is not None:
            await transport.close()

    async def _open_once(self) -> None:
        s = self.settings
        self._transport = open_transport(s.url, baudrate=s.baudrate)
        await self._transport.open(s.connect_timeout)
        if s.interface == "wrapper":
            self._link = WrapperLink(
                self._transport,
                s.client,
                s.server_address,
                s.response_timeout,
                self.exchange_log,
                secrets=self._secrets(),
            )
        else:
            self._link = HdlcLink(
                self._transport,
                s.client,
                s.server_address,
                s.physical_address,
                s.response_timeout,
                s.hdlc_retries,
                s.hdlc_max_info,
                self.exchange_log,
                secrets=self._secrets(),
            )
        await self._link.connect()
        await self._associate()

    def _secrets(self) -> tuple[bytes, ...]:
        """What the exchange log masks wherever it appears (besides what redact.py finds)."""
        s = self.settings
        return tuple(v for v in (s.password, s.block_key, s.auth_key) if isinstance(v, bytes))

    # ------------------------------------------------------------ counters
    async def _next_ic(self) -> int:
        if self._ic_next >= self._ic_end:
            key = self.settings.invocation_counter_key
            n = max(1, self.settings.counter_batch)
            first = await self.counters.reserve(key, n)
            self._ic_next, self._ic_end = first, first + n
        ic = self._ic_next
        self._ic_next += 1
        self._last_used_ic = ic
        return ic

    async def _recover_counter(self) -> bool:
        """Read the meter's counter via the public client and continue above it.

        Returns False when the meter's counter is below the one we used (so
        the counter was not the problem, e.g. wrong keys).
        """
        self._recovered = True
        public = DlmsAssociation(self.settings.public())
        async with public:
            value = await public.get_value(CLASS_DATA, INVOCATION_COUNTER, 2)
        if not isinstance(value, int) or isinstance(value, bool):
            raise MalformedResponse("invocation counter object is not an integer")
        if self._last_used_ic is not None and value < self._last_used_ic:
            return False
        await self.counters.advance_to(self.settings.invocation_counter_key, value + 1)
        self._ic_next = self._ic_end = 0
        return True

    # ------------------------------------------------------------ association
    async def _associate(self) -> None:
        s = self.settings
        self._gx = gx = GuruxApdu(
            client_address=s.client,
            server_address=s.server_address,
            auth=s.auth,
            password=s.password,
            system_title=s.system_title,
            block_key=s.block_key,
            auth_key=s.auth_key,
            max_pdu=s.max_pdu,
        )
        link = self._link
        if link is None:
            raise NotAssociated("no link to associate over")
        cipher = None
        if s.ciphered:
            self._cipher = cipher = Cipherer(s.block_key, s.auth_key, s.system_title)
            aarq = gx.aarq(await self._next_ic())
        else:
            aarq = gx.aarq()
        aare = await link.request(aarq)
        ap.check_common(aare)
        info = ap.parse_aare(aare)
        if s.ciphered and s.server_system_title and info.server_title != s.server_system_title:
            # Checked before anything of the AARE is trusted: the title is the GCM nonce's
            # first half, so a device with another title holding these keys is an impostor.
            raise SystemTitleMismatch(s.server_system_title, info.server_title)
        plain_user = info.user_info
        if cipher is not None and info.user_info and info.user_info[0] in CIPHERED_TAGS:
            if not info.server_title:
                raise SecurityError("ciphered AARE without responding-AP-title")
            cipher.server_title = info.server_title
            plain_user = cipher.unwrap(info.user_info)
            aare = ap.replace_aare_user_info(aare, info, plain_user)
        if info.result != ASSOCIATION_ACCEPTED:
            if plain_user and plain_user[0] == ap.CONFIRMED_SERVICE_ERROR:
                # confirmed-service-error (initiateError) inside the AARE
                reason = INITIATE_ERRORS.get(plain_user[-1], f"code {plain_user[-1]}")
                raise NotSupported(f"meter refused the xDLMS initiate: {reason}")
            err = AuthenticationFailed(
                f"association refused by the meter (result {info.result}, "
                f"diagnostic {info.diagnostic})"
            )
            err.at_aarq = info.diagnostic in (DIAG_NO_REASON, DIAG_AUTHENTICATION_FAILURE)  # type: ignore[attr-defined]
            raise err
        if s.ciphered and plain_user and plain_user[0] != ap.INITIATE_RESPONSE:
            raise SecurityError("unexpected user-information in AARE")
        gx.parse_aare(aare)
        negotiated = gx.negotiated_max_pdu or s.max_pdu
        self.max_pdu = min(negotiated, s.max_pdu) if negotiated else s.max_pdu
        if s.ciphered:
            gx.limit_request_pdu(max(MIN_REQUEST_PDU, self.max_pdu - CIPHERING_OVERHEAD))
        self.associated = True
        if s.ciphered:
            # HLS-GMAC always needs pass 3/4, whether or not the meter's AARE
            # says "authentication-required" (some meters send diagnostic 0).
            await self._hls_gmac()

    async def _hls_gmac(self) -> None:
        gx = self._requests()
        cipher = self._cipher
        if cipher is None:
            raise NotAssociated("HLS-GMAC on an association without ciphering")
        ic = await self._next_ic()
        f_stoc = hls_reply(cipher.block_key, cipher.auth_key, cipher.client_title, ic, gx.stoc)
        try:
            value = await self._action(
                CLASS_ASSOCIATION_LN, ASSOCIATION_LN, HLS_REPLY_METHOD, axdr.enc_octets(f_stoc)
            )
        except (AccessDenied, NotSupported) as ex:
            self.associated = False
            raise AuthenticationFailed(f"meter refused HLS-GMAC authentication: {ex}") from None
        if not isinstance(value, bytes):
            raise AuthenticationFailed("meter returned no HLS-GMAC reply")
        verify_hls_reply(
            cipher.block_key,
            cipher.auth_key,
            cipher.server_title or gx.server_system_title,
            gx.ctos,
            value,
        )

    # ------------------------------------------------------------ services
    async def _service(self, apdu: bytes) -> bytes:
        """Send one (plain) request APDU, return the plain response APDU."""
        if self._link is None:
            raise NotAssociated("session closed (aborted after an earlier error?)")
        cipher = self._cipher if self.settings.ciphered else None
        if cipher is not None:
            apdu = cipher.wrap(apdu, await self._next_ic())
        try:
            resp = await self._link.request(apdu)
            if cipher is not None:
                if resp[:1] and resp[0] in CIPHERED_TAGS:
                    resp = cipher.unwrap(resp)
                elif resp[:1] not in ERRORS_IN_ANY_GLO:
                    raise SecurityError("plain reply on a ciphered association")
        except BaseException:
            # After a timeout, a broken frame or a bad tag the stream can no
            # longer be trusted (a late reply would answer the next request):
            # drop the session.
            await self._abort()
            raise
        return resp

    async def get_raw(
        self, class_id: int, ln: str, attr: int, access: bytes | None = None
    ) -> bytes:
        """GET one attribute; return its A-XDR encoding (blocks reassembled)."""
        gx = self._requests()
        try:
            request = gx.get(class_id, ln, attr, access)[0]
        except Exception as ex:  # gurux argument errors
            raise ProtocolError(f"cannot build GET request: {ex}") from None
        return await self._get_request(request)

    async def _get_request(self, request: bytes) -> bytes:
        invoke = request[2]
        result = ap.parse_get_response(await self._service(request))
        if isinstance(result, tuple):
            return result[0]
        parts = [result.raw]
        expected = 1
        if result.number != expected:
            raise MalformedResponse(f"block {result.number}, expected {expected}")
        while not result.last:
            if len(parts) > MAX_BLOCKS:
                raise MalformedResponse("too many blocks")
            nxt = bytes((ap.GET_REQUEST, ap.NEXT, invoke)) + struct.pack(">I", result.number)
            result = ap.parse_get_response(await self._service(nxt))
            if isinstance(result, tuple):
                raise MalformedResponse("normal get-response during block transfer")
            expected += 1
            if result.number != expected:
                raise MalformedResponse(f"block {result.number}, expected {expected}")
            parts.append(result.raw)
        return b"".join(parts)

    async def get_many(self, items: list[tuple[int, str, int]]) -> list[bytes | ProtocolError]:
        """GET several attributes, with-list when the meter supports it.

        Returns, per item, its A-XDR encoding or the (data-access) error the
        meter gave for that item.  Transport/security errors raise.
        """
        gx = self._requests()
        if (
            len(items) > 1
            and gx.supports_with_list
            and self.settings.get_with_list
            and self.with_list_failure is None
        ):
            try:
                results = await self._get_with_list(items)
            except MalformedResponse as ex:
                if self._link is None:  # the stream itself broke: no second chance
                    raise
                # Some meters (gurux-based ones among them) leave out the items they cannot
                # read instead of answering each with its error: single GETs for the rest of
                # the session, and the caller remembers it for the meter's model.
                self.with_list_failure = f"GET-with-list answer malformed ({ex})"
            else:
                return [
                    r if isinstance(r, bytes) else ap.access_error(r, f"get {items[i][1]}")
                    for i, r in enumerate(results)
                ]
        out: list[bytes | ProtocolError] = []
        for item in items:
            try:
                out.append(await self.get_raw(*item))
            except (NotSupported, AccessDenied) as ex:
                out.append(ex)
        return out

    async def _get_with_list(self, items: list[tuple[int, str, int]]) -> list[bytes | int]:
        try:
            requests = self._requests().get_list(items)
        except Exception as ex:
            raise ProtocolError(f"cannot build GET-with-list request: {ex}") from None
        results: list[bytes | int] = []
        for request in requests:
            results.extend(ap.parse_list_results(await self._get_request(request)))
        if len(results) != len(items):
            raise MalformedResponse(f"{len(results)} results for {len(items)} items")
        return results

    async def get_value(
        self, class_id: int, ln: str, attr: int, access: bytes | None = None
    ) -> object:
        return axdr.decode_all(await self.get_raw(class_id, ln, attr, access))

    async def set_value(self, class_id: int, ln: str, attr: int, encoded: bytes) -> None:
        gx = self._requests()
        try:
            requests = gx.set(class_id, ln, attr, encoded)
        except Exception as ex:
            raise ProtocolError(f"cannot build SET request: {ex}") from None
        for request in requests:
            ap.parse_set_response(await self._service(request))

    async def _action(self, class_id: int, ln: str, method: int, param: bytes) -> object:
        gx = self._requests()
        try:
            requests = gx.action(class_id, ln, method, param)
        except Exception as ex:
            raise ProtocolError(f"cannot build ACTION request: {ex}") from None
        result = None
        for request in requests:
            result = ap.parse_action_response(await self._service(request))
        return result

    async def _call(self, fn, *args):
        """Run a service; on a rejected invocation counter, resync and retry once."""
        if not self.associated:
            raise NotAssociated("session is not open")
        try:
            return await fn(*args)
        except InvocationCounterRejected:
            if not self.settings.ciphered or self._recovered:
                raise
            await self._abort()
            try:
                recovered = await self._recover_counter()
            except ProtocolError as recovery_error:
                raise InvocationCounterRejected(
                    f"counter rejected and resynchronisation failed: {recovery_error}"
                ) from recovery_error
            if not recovered:
                raise
            await self._open_once()
            return await fn(*args)
