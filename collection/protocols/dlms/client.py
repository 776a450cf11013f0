"""asyncio DLMS/COSEM client implementing the protocol-neutral contract."""

from __future__ import annotations

import contextlib
import struct
from datetime import datetime, timedelta
from decimal import Decimal

from meters import obis as obis_codes

from .. import base
from ..base import (
    Channel,
    ClockReading,
    InstantaneousValues,
    InvocationCounterStore,
    MemoryInvocationCounterStore,
    MeterEvent,
    MeterSession,
    ProfileBlock,
    ProfileRow,
    RegisterValue,
    RelayState,
    TouCalendar,
    ensure_utc,
    utcnow,
)
from ..errors import (
    AccessDenied,
    AuthenticationFailed,
    ConnectionFailed,
    InvocationCounterRejected,
    MalformedResponse,
    NotSupported,
    ProtocolError,
    SecurityError,
    SystemTitleMismatch,
)
from ..transport import open_transport
from . import apdu as ap
from . import axdr
from .gurux_compat import (
    CLASS_ACTIVITY_CALENDAR,
    CLASS_ASSOCIATION_LN,
    CLASS_CLOCK,
    CLASS_DATA,
    CLASS_DISCONNECT_CONTROL,
    CLASS_EXTENDED_REGISTER,
    CLASS_PROFILE_GENERIC,
    CLASS_REGISTER,
    GuruxApdu,
)
from .link import HdlcLink, Link, WrapperLink
from .security import CIPHERED_TAGS, Cipherer, hls_reply, verify_hls_reply
from .settings import DlmsSettings

CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
EVENT_LOG = "0.0.99.98.0.255"
DISCONNECT_CONTROL = "0.0.96.3.10.255"
ACTIVITY_CALENDAR = "0.0.13.0.0.255"
INVOCATION_COUNTER = "0.0.43.1.0.255"
ASSOCIATION_LN = "0.0.40.0.0.255"

ENERGY_REGISTERS = (
    "1-0:1.8.0*255",
    "1-0:2.8.0*255",
    "1-0:3.8.0*255",
    "1-0:4.8.0*255",
    "1-0:1.8.1*255",
    "1-0:1.8.2*255",
)
MAXIMUM_DEMAND = "1-0:1.6.0*255"
VOLTAGES = ("1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255")
CURRENTS = ("1.0.31.7.0.255", "1.0.51.7.0.255", "1.0.71.7.0.255")
ANGLES = ("1.0.81.7.4.255", "1.0.81.7.15.255", "1.0.81.7.26.255")  # I(Lx)-U(Lx)
FREQUENCY = "1.0.14.7.0.255"
ACTIVE_POWER = "1.0.1.7.0.255"

INITIATE_ERRORS = {
    0: "other",
    1: "dlms-version-too-low",
    2: "incompatible-conformance",
    3: "pdu-size-too-short",
    4: "refused-by-the-VDE-handler",
}
CONTROL_STATES = {0: "disconnected", 1: "connected", 2: "ready_for_reconnection"}
_ZERO = Decimal(0)


def scale(value: object, scaler: int) -> Decimal | None:
    """Apply a decimal exponent to a raw register value."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if scaler >= 0:
            return Decimal(value * 10**scaler)
        return Decimal(value).scaleb(scaler)
    if isinstance(value, float):
        return Decimal(repr(value)).scaleb(scaler)
    return None


def _guess_class(obis: str) -> int:
    parts = obis_codes.to_bytes(obis)
    if parts[0] == 1 and parts[3] in (6,):
        return CLASS_EXTENDED_REGISTER
    if parts[0] == 1:
        return CLASS_REGISTER
    return CLASS_DATA


class DlmsClient(MeterSession):
    """One DLMS/COSEM association (LN referencing) over WRAPPER or HDLC.

    Not thread-safe; meant for one asyncio task at a time.
    """

    capabilities = base.ALL_CAPABILITIES - {base.LIMITER, base.PUSH_SETUP}

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
        self._scalers: dict[tuple[int, str], tuple[int, str | None]] = {}
        self._captures: dict[str, list[tuple[int, str, int, int]]] = {}
        self._periods: dict[str, int | None] = {}
        self.associated = False
        self.max_pdu = settings.max_pdu
        # Why GET-with-list was given up for single GETs in this session (None: it was not).
        self.with_list_failure: str | None = None

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
        public = DlmsClient(self.settings.public())
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
        assert self._link is not None
        if s.ciphered:
            self._cipher = Cipherer(s.block_key, s.auth_key, s.system_title)
            aarq = gx.aarq(await self._next_ic())
        else:
            aarq = gx.aarq()
        aare = await self._link.request(aarq)
        ap.check_common(aare)
        info = ap.parse_aare(aare)
        if s.ciphered and s.server_system_title and info.server_title != s.server_system_title:
            # Checked before anything of the AARE is trusted: the title is the GCM nonce's
            # first half, so a device with another title holding these keys is an impostor.
            raise SystemTitleMismatch(s.server_system_title, info.server_title)
        plain_user = info.user_info
        if s.ciphered and info.user_info and info.user_info[0] in CIPHERED_TAGS:
            assert self._cipher is not None
            if not info.server_title:
                raise SecurityError("ciphered AARE without responding-AP-title")
            self._cipher.server_title = info.server_title
            plain_user = self._cipher.unwrap(info.user_info)
            aare = ap.replace_aare_user_info(aare, info, plain_user)
        if info.result != 0:
            if plain_user and plain_user[:1] == b"\x0e":
                # confirmed-service-error (initiateError) inside the AARE
                reason = INITIATE_ERRORS.get(plain_user[-1], f"code {plain_user[-1]}")
                raise NotSupported(f"meter refused the xDLMS initiate: {reason}")
            err = AuthenticationFailed(
                f"association refused by the meter (result {info.result}, "
                f"diagnostic {info.diagnostic})"
            )
            err.at_aarq = info.diagnostic in (1, 13)  # type: ignore[attr-defined]
            raise err
        if s.ciphered and plain_user and plain_user[0] != 0x08:
            raise SecurityError("unexpected user-information in AARE")
        gx.parse_aare(aare)
        negotiated = gx.negotiated_max_pdu or s.max_pdu
        self.max_pdu = min(negotiated, s.max_pdu) if negotiated else s.max_pdu
        if s.ciphered:
            gx.limit_request_pdu(max(64, self.max_pdu - 32))
        self.associated = True
        if s.ciphered:
            # HLS-GMAC always needs pass 3/4, whether or not the meter's AARE
            # says "authentication-required" (some meters send diagnostic 0).
            await self._hls_gmac()

    async def _hls_gmac(self) -> None:
        gx = self._gx
        cipher = self._cipher
        assert gx is not None and cipher is not None
        ic = await self._next_ic()
        f_stoc = hls_reply(cipher.block_key, cipher.auth_key, cipher.client_title, ic, gx.stoc)
        try:
            value = await self._action(
                CLASS_ASSOCIATION_LN, ASSOCIATION_LN, 1, axdr.enc_octets(f_stoc)
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
            raise ConnectionFailed("session closed (aborted after an earlier error?)")
        cipher = self._cipher if self.settings.ciphered else None
        if cipher is not None:
            apdu = cipher.wrap(apdu, await self._next_ic())
        try:
            resp = await self._link.request(apdu)
            if cipher is not None:
                if resp[:1] and resp[0] in CIPHERED_TAGS:
                    resp = cipher.unwrap(resp)
                elif resp[:1] not in (b"\xd8", b"\x0e"):
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
        assert self._gx is not None
        try:
            request = self._gx.get(class_id, ln, attr, access)[0]
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
            if len(parts) > 10000:
                raise MalformedResponse("too many blocks")
            nxt = bytes((0xC0, 0x02, invoke)) + struct.pack(">I", result.number)
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
        assert self._gx is not None
        if (
            len(items) > 1
            and self._gx.supports_with_list
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
            requests = self._gx.get_list(items)
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
        assert self._gx is not None
        try:
            requests = self._gx.set(class_id, ln, attr, encoded)
        except Exception as ex:
            raise ProtocolError(f"cannot build SET request: {ex}") from None
        for request in requests:
            ap.parse_set_response(await self._service(request))

    async def _action(self, class_id: int, ln: str, method: int, param: bytes) -> object:
        assert self._gx is not None
        try:
            requests = self._gx.action(class_id, ln, method, param)
        except Exception as ex:
            raise ProtocolError(f"cannot build ACTION request: {ex}") from None
        result = None
        for request in requests:
            result = ap.parse_action_response(await self._service(request))
        return result

    async def _call(self, fn, *args):
        """Run a service; on a rejected invocation counter, resync and retry once."""
        if not self.associated:
            raise ConnectionFailed("session is not open")
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

    # ------------------------------------------------------------ helpers
    async def _scaler_unit(self, class_id: int, ln: str) -> tuple[int, str | None]:
        key = (class_id, ln)
        cached = self._scalers.get(key)
        if cached is not None:
            return cached
        if class_id in (CLASS_REGISTER, CLASS_EXTENDED_REGISTER, 5):
            su = await self.get_value(class_id, ln, 3)
            if not (isinstance(su, list) and len(su) == 2 and isinstance(su[0], int)):
                raise MalformedResponse(f"invalid scaler_unit for {ln}")
            result = (su[0], axdr.unit_name(su[1] if isinstance(su[1], int) else None))
        else:
            result = (0, None)
        self._scalers[key] = result
        return result

    def _register_classes(self, name: str) -> list[int]:
        preferred = self.settings.register_classes.get(name) or _guess_class(name)
        return [preferred] + [
            c for c in (CLASS_REGISTER, CLASS_EXTENDED_REGISTER, CLASS_DATA) if c != preferred
        ]

    @staticmethod
    def _su(raw: bytes, ln: str) -> tuple[int, str | None]:
        su = axdr.decode_all(raw)
        if not (isinstance(su, list) and len(su) == 2 and isinstance(su[0], int)):
            raise MalformedResponse(f"invalid scaler_unit for {ln}")
        return su[0], axdr.unit_name(su[1] if isinstance(su[1], int) else None)

    async def _read_register_group(
        self, names: list[str], classes: dict[str, int]
    ) -> dict[str, RegisterValue | ProtocolError]:
        """One GET(-with-list) round for the given registers and classes."""
        items: list[tuple[int, str, int]] = []
        slots: dict[str, dict[int, int]] = {}
        for name in names:
            cls, ln = classes[name], obis_codes.dotted(name)
            want = [2]
            if cls in (CLASS_REGISTER, CLASS_EXTENDED_REGISTER) and (cls, ln) not in self._scalers:
                want.append(3)
            if cls == CLASS_EXTENDED_REGISTER:
                want.append(5)
            slots[name] = {}
            for attr in want:
                slots[name][attr] = len(items)
                items.append((cls, ln, attr))
        results = await self.get_many(items)
        out: dict[str, RegisterValue | ProtocolError] = {}
        for name in names:
            cls, ln = classes[name], obis_codes.dotted(name)
            got = {attr: results[i] for attr, i in slots[name].items()}
            error = next((r for r in got.values() if isinstance(r, ProtocolError)), None)
            if error is not None:
                out[name] = error
                continue
            if 3 in got:
                self._scalers[(cls, ln)] = self._su(got[3], ln)
            scaler, unit = self._scalers.get((cls, ln), (0, None))
            raw = axdr.decode_all(got[2])
            capture = None
            if 5 in got:
                ct = axdr.decode_all(got[5])
                if isinstance(ct, bytes) and len(ct) == 12:
                    capture = axdr.decode_datetime(ct)
            out[name] = RegisterValue(
                obis=name,
                value=scale(raw, scaler),
                unit=unit,
                scaler=scaler,
                capture_time=capture,
                raw=raw if isinstance(raw, (int, str, bytes)) else None,
            )
        return out

    async def _read_registers(self, obis: list[str]) -> list[RegisterValue]:
        names = [obis_codes.normalise(o) for o in obis]
        unique = list(dict.fromkeys(names))
        candidates = {n: self._register_classes(n) for n in unique}
        done: dict[str, RegisterValue] = {}
        errors: dict[str, ProtocolError] = {}
        pending = unique
        while pending:
            classes = {n: candidates[n].pop(0) for n in pending}
            results = await self._read_register_group(pending, classes)
            retry = []
            for n in pending:
                r = results[n]
                if isinstance(r, RegisterValue):
                    done[n] = r
                    errors.pop(n, None)
                elif isinstance(r, NotSupported) and candidates[n]:
                    # object-undefined / class-inconsistent: try the next class
                    errors.setdefault(n, r)
                    retry.append(n)
                else:
                    errors[n] = errors.get(n) or r
            pending = retry
        out = []
        for n in names:
            if n in done:
                out.append(done[n])
            else:
                out.append(RegisterValue(obis=n, value=None, unit=None, error=str(errors[n])))
        return out

    async def _capture_objects(self, ln: str) -> list[tuple[int, str, int, int]]:
        cached = self._captures.get(ln)
        if cached is not None:
            return cached
        raw_co, raw_period = await self.get_many(
            [(CLASS_PROFILE_GENERIC, ln, 3), (CLASS_PROFILE_GENERIC, ln, 4)]
        )
        if isinstance(raw_co, ProtocolError):
            raise raw_co
        value = axdr.decode_all(raw_co)
        period = axdr.decode_all(raw_period) if isinstance(raw_period, bytes) else None
        self._periods[ln] = period if isinstance(period, int) and period > 0 else None
        out = []
        if not isinstance(value, list):
            raise MalformedResponse("capture_objects is not an array")
        for item in value:
            if not (
                isinstance(item, list)
                and len(item) == 4
                and isinstance(item[1], bytes)
                and len(item[1]) == 6
            ):
                raise MalformedResponse("invalid capture object definition")
            out.append((item[0], obis_codes.dotted(item[1]), item[2], item[3]))
        # scaler_unit of every register column, in one more round trip
        need = [
            (c, o, 3)
            for c, o, a, _ in out
            if a == 2
            and c in (CLASS_REGISTER, CLASS_EXTENDED_REGISTER)
            and (c, o) not in self._scalers
        ]
        for (c, o, _a), raw in zip(need, await self.get_many(need), strict=True):
            self._scalers[(c, o)] = self._su(raw, o) if isinstance(raw, bytes) else (0, None)
        self._captures[ln] = out
        return out

    async def _read_buffer(
        self, ln: str, start: datetime, end: datetime
    ) -> tuple[list[tuple[int, str, int, int]], list]:
        captures = await self._capture_objects(ln)
        clock = next((c for c in captures if c[0] == CLASS_CLOCK), None)
        if clock is None:
            raise NotSupported(f"profile {ln} has no clock column for range access")
        access = b"\x01" + axdr.enc_struct(
            axdr.enc_struct(
                axdr.enc_uint16(CLASS_CLOCK),
                axdr.enc_octets(obis_codes.to_bytes(clock[1])),
                axdr.enc_int8(clock[2]),
                axdr.enc_uint16(0),
            ),
            axdr.enc_octets(axdr.encode_datetime(ensure_utc(start))),
            axdr.enc_octets(axdr.encode_datetime(ensure_utc(end))),
            axdr.enc_array([]),
        )
        rows = axdr.decode_all(await self.get_raw(CLASS_PROFILE_GENERIC, ln, 2, access))
        if not isinstance(rows, list):
            raise MalformedResponse("profile buffer is not an array")
        return captures, rows

    # ------------------------------------------------------------ contract
    async def read_clock(self) -> ClockReading:
        return await self._call(self._read_clock)

    async def _read_clock(self) -> ClockReading:
        raw = await self.get_value(CLASS_CLOCK, CLOCK, 2)
        now = utcnow()
        if not isinstance(raw, bytes) or len(raw) != 12:
            raise MalformedResponse("clock time is not a 12-byte date-time")
        return ClockReading(axdr.decode_datetime(raw), now, axdr.datetime_status(raw))

    async def set_clock(self, value: datetime | None = None) -> ClockReading:
        return await self._call(self._set_clock, value)

    async def _set_clock(self, value: datetime | None) -> ClockReading:
        when = ensure_utc(value) if value is not None else utcnow()
        await self.set_value(CLASS_CLOCK, CLOCK, 2, axdr.enc_octets(axdr.encode_datetime(when)))
        return await self._read_clock()

    async def read_registers(self, obis: list[str]) -> list[RegisterValue]:
        return await self._call(self._read_registers, list(obis))

    async def read_load_profile(self, profile: str, start: datetime, end: datetime) -> ProfileBlock:
        return await self._call(self._read_load_profile, profile, start, end)

    async def _read_load_profile(self, profile: str, start: datetime, end: datetime):
        ln = obis_codes.dotted(profile or LOAD_PROFILE)
        captures, rows = await self._read_buffer(ln, start, end)
        period = self._periods.get(ln)
        clock_idx = next(i for i, c in enumerate(captures) if c[0] == CLASS_CLOCK)
        status_idx = None
        value_cols: list[tuple[int, int]] = []  # (column, scaler)
        channels = []
        for i, (cls, cln, attr, _di) in enumerate(captures):
            if i == clock_idx:
                continue
            if cls == CLASS_DATA and cln.startswith("0.0.96.10."):
                status_idx = i
                continue
            scaler, unit = await self._scaler_unit(cls, cln) if attr == 2 else (0, None)
            channels.append(Channel(obis_codes.normalise(cln), unit, scaler, attr))
            value_cols.append((i, scaler))
        out = []
        width = len(captures)
        previous: datetime | None = None
        decode_dt = axdr.decode_datetime
        for row in rows:
            if not isinstance(row, list) or len(row) != width:
                raise MalformedResponse("profile row does not match capture objects")
            raw_ts = row[clock_idx]
            if isinstance(raw_ts, bytes):
                ts = decode_dt(raw_ts)
            elif raw_ts is None:
                ts = None
            else:
                raise MalformedResponse("profile timestamp is not a date-time")
            if ts is None:
                if previous is None or period is None:
                    raise MalformedResponse("profile row without timestamp")
                ts = previous + timedelta(seconds=period)
            previous = ts
            values = tuple(scale(row[i], s) for i, s in value_cols)
            status = row[status_idx] if status_idx is not None else None
            out.append(ProfileRow(ts, values, status if isinstance(status, int) else None))
        return ProfileBlock(obis_codes.normalise(ln), tuple(channels), tuple(out), period)

    async def read_events(self, log: str, start: datetime, end: datetime) -> list[MeterEvent]:
        return await self._call(self._read_events, log, start, end)

    async def _read_events(self, log: str, start: datetime, end: datetime):
        ln = obis_codes.dotted(log or EVENT_LOG)
        captures, rows = await self._read_buffer(ln, start, end)
        clock_idx = next(i for i, c in enumerate(captures) if c[0] == CLASS_CLOCK)
        other = [i for i in range(len(captures)) if i != clock_idx]
        if not other:
            raise MalformedResponse("event log without an event code column")
        name = obis_codes.normalise(ln)
        events = []
        for row in rows:
            if not isinstance(row, list) or len(row) != len(captures):
                raise MalformedResponse("event row does not match capture objects")
            raw_ts = row[clock_idx]
            ts = axdr.decode_datetime(raw_ts) if isinstance(raw_ts, bytes) else None
            code = row[other[0]]
            if ts is None or not isinstance(code, int):
                raise MalformedResponse("invalid event row")
            events.append(MeterEvent(ts, code, name, tuple(row[i] for i in other[1:])))
        return events

    async def read_instantaneous(self) -> InstantaneousValues:
        return await self._call(self._read_instantaneous)

    async def _read_instantaneous(self) -> InstantaneousValues:
        codes = [*VOLTAGES, *CURRENTS, *ANGLES, FREQUENCY, ACTIVE_POWER]
        values = [r.value for r in await self._read_registers(codes)]
        return InstantaneousValues(
            utcnow(),
            tuple(values[0:3]),
            tuple(values[3:6]),
            tuple(values[6:9]),
            values[9],
            values[10],
        )

    async def relay_state(self) -> RelayState:
        return await self._call(self._relay_state)

    async def _relay_state(self) -> RelayState:
        output = await self.get_value(CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL, 2)
        control = await self.get_value(CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL, 3)
        return RelayState(bool(output), CONTROL_STATES.get(control, "unknown"))

    async def connect(self) -> RelayState:
        return await self._call(self._relay_action, 2)

    async def disconnect(self) -> RelayState:
        return await self._call(self._relay_action, 1)

    async def _relay_action(self, method: int) -> RelayState:
        await self._action(CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL, method, axdr.enc_int8(0))
        return await self._relay_state()

    async def write_tou(self, calendar: TouCalendar, activate_at: datetime | None = None) -> None:
        return await self._call(self._write_tou, calendar, activate_at)

    async def _write_tou(self, cal: TouCalendar, activate_at: datetime | None) -> None:
        e = axdr
        ln = ACTIVITY_CALENDAR
        cls = CLASS_ACTIVITY_CALENDAR
        seasons = e.enc_array(
            [
                e.enc_struct(
                    e.enc_octets(s.name.encode()),
                    e.enc_octets(e.encode_datetime(ensure_utc(s.start))),
                    e.enc_octets(s.week.encode()),
                )
                for s in cal.seasons
            ]
        )
        weeks = e.enc_array(
            [
                e.enc_struct(e.enc_octets(w.name.encode()), *(e.enc_uint8(d) for d in w.days))
                for w in cal.weeks
            ]
        )
        days = e.enc_array(
            [
                e.enc_struct(
                    e.enc_uint8(d.day_id),
                    e.enc_array(
                        [
                            e.enc_struct(
                                e.enc_octets(
                                    bytes((a.start.hour, a.start.minute, a.start.second, 0))
                                ),
                                e.enc_octets(obis_codes.to_bytes(a.script)),
                                e.enc_uint16(a.selector),
                            )
                            for a in d.actions
                        ]
                    ),
                )
                for d in cal.days
            ]
        )
        await self.set_value(cls, ln, 6, e.enc_octets(cal.name.encode()))
        await self.set_value(cls, ln, 7, seasons)
        await self.set_value(cls, ln, 8, weeks)
        await self.set_value(cls, ln, 9, days)
        if activate_at is None:
            await self._action(cls, ln, 1, e.enc_int8(0))
        else:
            await self.set_value(
                cls, ln, 10, e.enc_octets(e.encode_datetime(ensure_utc(activate_at)))
            )

    async def configure_load_profile(
        self, period_seconds: int, channels: list[str], profile: str | None = None
    ) -> None:
        return await self._call(self._configure_load_profile, period_seconds, channels, profile)

    async def _configure_load_profile(self, period, channels, profile) -> None:
        ln = obis_codes.dotted(profile or LOAD_PROFILE)
        e = axdr

        def capture(cls: int, obis: str, attr: int) -> bytes:
            return e.enc_struct(
                e.enc_uint16(cls),
                e.enc_octets(obis_codes.to_bytes(obis)),
                e.enc_int8(attr),
                e.enc_uint16(0),
            )

        objects = [capture(CLASS_CLOCK, CLOCK, 2)] + [
            capture(
                self.settings.register_classes.get(obis_codes.normalise(c), CLASS_REGISTER), c, 2
            )
            for c in channels
        ]
        await self.set_value(CLASS_PROFILE_GENERIC, ln, 3, e.enc_array(objects))
        await self.set_value(CLASS_PROFILE_GENERIC, ln, 4, e.enc_uint32(int(period)))
        self._captures.pop(ln, None)


async def read_meter(settings: DlmsSettings, **kwargs) -> DlmsClient:
    """Convenience: an opened client (caller closes it)."""
    client = DlmsClient(settings, **kwargs)
    await client.open()
    return client


__all__ = ["DlmsClient", "DlmsSettings", "read_meter"]
