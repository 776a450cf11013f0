"""A simulated DLMS/COSEM meter fleet on asyncio (no Django).

Quick start::

    meters = make_meters(100)
    async with DlmsFleet(meters, interface="wrapper") as fleet:
        host, port, server_address = fleet.address_of(meters[0].serial)
        ...  # a client connects to host:port, destination wPort = server_address

Two listening modes:

* ``per_meter_ports=False`` (default): ONE listener; the WRAPPER destination wPort, or the
  HDLC upper (logical) server address, selects the meter: meter ``i`` (0-based, in the
  order given) answers at logical address ``i + 1``.
* ``per_meter_ports=True``: one listener per meter (``port + i``, or ephemeral ports when
  ``port == 0``); every meter is the management logical device, address 1.

The HDLC lower (physical) address is not checked.  See README.md for the object list.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import resource
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ..protocols.dlms import axdr
from ..protocols.dlms import security as S
from ..protocols.dlms.framing import (
    ApduFrame,
    HdlcFrame,
    HdlcStream,
    WrapperStream,
    wrapper_encode,
)
from .dlms import apdu as A
from .dlms.dc_data import ConcentratorObjects, MeterChannels
from .dlms.errors import FrameError, SimProtocolError
from .dlms.link import HdlcLink
from .dlms.meter import (
    CLIENT_HLS,
    CLIENT_LLS,
    CLIENT_PUBLIC,
    FAULT_KINDS,
    Fault,
    MeterState,
    SimulatedMeter,
    default_auth_key,
    default_block_key,
    default_system_title,
)
from .dlms.session import Session

__all__ = [
    "CLIENT_HLS",
    "CLIENT_LLS",
    "CLIENT_PUBLIC",
    "FAULT_KINDS",
    "DlmsFleet",
    "Fault",
    "MeterAddress",
    "MeterState",
    "SimulatedMeter",
    "assign_faults",
    "build_push_apdu",
    "default_auth_key",
    "default_block_key",
    "default_system_title",
    "make_meters",
    "push_alarm",
]

HDLC_PHYSICAL_ADDRESS = 17  # advertised lower HDLC address (any value is accepted)
PUSH_ATTEMPTS = 25  # a scripted push the head-end does not take is tried this often,
PUSH_RETRY_DELAY_S = 5.0  # this far apart (a listener still starting, restarting)


class MeterAddress(NamedTuple):
    """Where a meter answers: ``host, port, server_address = fleet.address_of(serial)``.

    ``server_address`` is the logical device address: the WRAPPER destination wPort, or the
    HDLC upper address (use ``hdlc_physical`` as lower address).
    """

    host: str
    port: int
    server_address: int

    @property
    def wport(self) -> int:
        return self.server_address

    @property
    def hdlc_logical(self) -> int:
        return self.server_address

    @property
    def hdlc_physical(self) -> int:
        return HDLC_PHYSICAL_ADDRESS


def make_meters(count: int, *, first_serial: int = 90000001, **kwargs) -> list[SimulatedMeter]:
    """``count`` meters with consecutive numeric serials and default TEST keys."""
    return [SimulatedMeter(serial=str(first_serial + i), **kwargs) for i in range(count)]


def assign_faults(
    meters: Iterable[SimulatedMeter],
    share: float,
    kinds: Sequence[str] = FAULT_KINDS,
    seed: int = 0,
    fault_class: type = Fault,
) -> list[SimulatedMeter]:
    """Give a deterministic share of the meters a fault (chosen by hash of seed + serial);
    any protocol's meters (``.serial``, ``.fault``) with that protocol's ``fault_class``."""
    out = []
    kinds = list(kinds)
    for m in meters:
        h = int.from_bytes(hashlib.sha256(f"{seed}:{m.serial}".encode()).digest()[:8], "big")
        if kinds and (h % 1_000_000) / 1_000_000 < share:
            m.fault = fault_class(kinds[(h >> 32) % len(kinds)])
        out.append(m)
    return out


def build_push_apdu(
    meter: SimulatedMeter,
    state: MeterState,
    when: datetime,
    *,
    alarm: int,
    ciphered: bool = False,
    event_code: int | None = None,
) -> bytes:
    """DataNotification of the push setup objects (LDN, alarm register 1, clock).

    With `event_code`, the event code object of the standard event log (0.0.96.11.0.255,
    unsigned) goes before the clock: an event pushed as it happens, `when` being its time.
    Ciphered: general-glo-ciphering with the meter's system title, SC 0x30 and a fresh
    server invocation counter.
    """
    state.alarm = alarm
    values = [axdr.enc_octets(b"SIM" + meter.serial.encode()), axdr.enc_uint32(alarm)]
    if event_code is not None:
        values.append(axdr.enc_uint8(event_code))
    body = axdr.enc_struct(*values, axdr.enc_datetime(when))
    notification = A.data_notification(
        state.sessions & 0x7FFFFFFF, axdr.encode_datetime(when), body
    )
    if not ciphered:
        return notification
    ic = state.next_server_ic()
    content = S.protect(
        S.SC_AUTH_ENC, meter.system_title, ic, meter.block_key, meter.auth_key, notification
    )
    return S.wrap_general_glo(meter.system_title, content)


async def push_alarm(
    meter: SimulatedMeter,
    host: str,
    port: int,
    *,
    alarm: int = 1,
    ciphered: bool = False,
    state: MeterState | None = None,
    now: datetime | None = None,
    source_wport: int = 1,
    destination_wport: int = 1,
    timeout: float = 10.0,
    event_code: int | None = None,
) -> bytes:
    """Send one WRAPPER-framed DataNotification to ``host:port``; return the frame sent."""
    state = state if state is not None else MeterState()
    when = now or datetime.now(UTC)
    apdu = build_push_apdu(
        meter, state, when, alarm=alarm, ciphered=ciphered, event_code=event_code
    )
    frame = wrapper_encode(source_wport, destination_wport, apdu)
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(frame)
        await asyncio.wait_for(writer.drain(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return frame


class _Conn:
    __slots__ = ("index", "session", "link", "replies", "writer", "silent", "dc_sessions")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.dc_sessions: dict[int, Session] = {}  # concentrators' logical devices, by wPort
        self.index: int | None = None
        self.session: Session | None = None
        self.link: HdlcLink | None = None
        self.replies = 0
        self.writer = writer
        self.silent = False


class DlmsFleet:
    """Many simulated meters served by one asyncio loop; an async context manager."""

    def __init__(
        self,
        meters: Iterable[SimulatedMeter],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        interface: str = "wrapper",
        per_meter_ports: bool = False,
        now: Callable[[], datetime] | None = None,
        idle_timeout: float = 120.0,
        push_to: str | None = None,
        counter_base: int = 0,
    ) -> None:
        if interface not in ("wrapper", "hdlc"):
            raise ValueError("interface must be 'wrapper' or 'hdlc'")
        self.meters: list[SimulatedMeter] = list(meters)
        self._index = {m.serial: i for i, m in enumerate(self.meters)}
        if len(self._index) != len(self.meters):
            raise ValueError("duplicate serials")
        limit = 0xFFFE if interface == "wrapper" else 0x3FFE
        if not per_meter_ports and len(self.meters) > limit:
            raise ValueError(f"at most {limit} meters on one {interface} listener")
        self.host = host
        self.port = port
        self.interface = interface
        self.per_meter_ports = per_meter_ports
        # Each meter's first invocation counter is counter_base + 1 (cli --counters-from-clock).
        self.counter_base = counter_base
        self.now = now or (lambda: datetime.now(UTC))
        self.idle_timeout = idle_timeout
        self.push_to = push_to
        self.states: dict[int, MeterState] = {}
        # wPort -> a concentrator's own logical device (add_concentrator)
        self.concentrators: dict[int, tuple[SimulatedMeter, MeterState, ConcentratorObjects]] = {}
        self._servers: list[asyncio.Server] = []
        self._ports: list[int] = []
        self._conns: set[_Conn] = set()
        self._tasks: set[asyncio.Task] = set()  # connection handlers
        self._push_tasks: set[asyncio.Task] = set()
        self.pushed: list[tuple[str, bytes]] = []  # (serial, frame) sent by push setup
        self.push_failures = 0  # scripted pushes the head-end did not take (logged)
        self.filtered_alarms = 0  # alarms the meter's alarm filter 1 kept from being pushed
        self._pushed_until: datetime | None = None  # scripted incidents pushed up to here
        self._unsent: list[tuple] = []  # (time, meter index, code, attempts, next try)
        self._incident_loop: asyncio.Task | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> DlmsFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self, *, push_incidents: bool = False) -> None:
        """Listen; with `push_incidents` (and `push_to`), push scripted incidents as they happen
        (tests leave it off and call `push_due` themselves)."""
        self._pushed_until = self.now()
        if push_incidents and self.push_to:
            self._incident_loop = asyncio.get_running_loop().create_task(self._push_incidents())
        if self.per_meter_ports:
            _raise_fd_limit(len(self.meters) + 256)
            for i in range(len(self.meters)):
                port = self.port + i if self.port else 0
                srv = await asyncio.start_server(
                    lambda r, w, i=i: self._serve(r, w, i), self.host, port, backlog=16
                )
                self._servers.append(srv)
                self._ports.append(srv.sockets[0].getsockname()[1])
        else:
            srv = await asyncio.start_server(
                lambda r, w: self._serve(r, w, None), self.host, self.port, backlog=1024
            )
            self._servers.append(srv)
            self._ports.append(srv.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, drop every open connection (quietly) and let pushes finish."""
        if self._incident_loop is not None:
            self._incident_loop.cancel()
            await asyncio.gather(self._incident_loop, return_exceptions=True)
            self._incident_loop = None
        for srv in self._servers:
            srv.close()
        for c in list(self._conns):
            c.writer.transport.abort()
        handlers = list(self._tasks)
        for t in handlers:
            t.cancel()  # e.g. a "late" reply sleeping: no need to wait for it
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        pushes = list(self._push_tasks)
        if pushes:
            await asyncio.wait(pushes, timeout=1.0)
            for t in pushes:
                t.cancel()
            await asyncio.gather(*pushes, return_exceptions=True)
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await srv.wait_closed()
        self._servers.clear()

    @contextlib.contextmanager
    def running_in_thread(self):
        """Run the fleet on its own event loop in a daemon thread (for blocking clients)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="dlms-fleet", daemon=True)
        loop.run_until_complete(self.start())
        thread.start()
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    @property
    def listeners(self) -> list[tuple[str, int]]:
        return [(self.host, p) for p in self._ports]

    # --- addressing / state -------------------------------------------------------------

    def address_of(self, serial: str) -> MeterAddress:
        i = self._index[serial]
        if self.per_meter_ports:
            return MeterAddress(self.host, self._ports[i], 1)
        return MeterAddress(self.host, self._ports[0], i + 1)

    def meter(self, serial: str) -> SimulatedMeter:
        return self.meters[self._index[serial]]

    def state_of(self, serial: str) -> MeterState:
        return self._state(self._index[serial])

    def _state(self, i: int) -> MeterState:
        st = self.states.get(i)
        if st is None:
            script = self.meters[i].script
            relay = 1 if script is None or script.relay_connected else 0
            st = self.states[i] = MeterState(control_state=relay, server_ic=self.counter_base)
        return st

    # --- push ------------------------------------------------------------------------------

    async def push_alarm(
        self,
        serial: str,
        *,
        alarm: int = 1,
        destination: str | None = None,
        ciphered=False,
        event_code: int | None = None,
        when: datetime | None = None,
    ) -> bytes:
        """Push a DataNotification (alarm) from ``serial`` to ``destination`` ("host:port"),
        default: the meter's push setup destination, else the fleet's ``push_to``.

        The meter's alarm filter 1 applies: the alarm register (and the push) carry only the
        bits it lets through; an alarm it masks out entirely is not pushed (``b""``, counted
        in ``filtered_alarms``). An event push (``event_code``) is not an alarm: it goes."""
        i = self._index[serial]
        st = self._state(i)
        masked = alarm & st.alarm_filters[0]
        if alarm and not masked and event_code is None:
            self.filtered_alarms += 1
            return b""
        alarm = masked
        dest = destination or st.push_destination or self.push_to
        if not dest:
            raise ValueError("no push destination configured")
        host, _, port = dest.rpartition(":")
        addr = self.address_of(serial).server_address
        frame = await push_alarm(
            self.meters[i],
            host,
            int(port),
            alarm=alarm,
            ciphered=ciphered,
            state=st,
            now=when or self.now(),
            source_wport=addr,
            event_code=event_code,
        )
        self.pushed.append((serial, frame))
        return frame

    async def push_due(self) -> list[tuple[str, datetime, int]]:
        """Push every scripted incident that happened since the last call (or the start), as
        the meter would: ciphered, carrying the event code and the event's time. Returns
        ``(serial, time, code)`` of the events pushed. A push the head-end does not take is
        tried again `PUSH_RETRY_DELAY_S` later, up to `PUSH_ATTEMPTS` times (the push
        setup's number of retries and repetition delay), then counted in `push_failures`."""
        until = self.now()
        after, self._pushed_until = self._pushed_until or until, until
        due = [
            (at, i, code, 0)
            for i, meter in enumerate(self.meters)
            if meter.script is not None
            for at, code in meter.script.pushes(after, until)
        ]
        retry = [u for u in self._unsent if u[4] <= until]
        self._unsent = [u for u in self._unsent if u[4] > until]
        sent = []
        for at, i, code, attempts, *_ in sorted(retry + due):
            serial = self.meters[i].serial
            try:
                await self.push_alarm(serial, alarm=0, ciphered=True, event_code=code, when=at)
            except (OSError, TimeoutError) as exc:
                if attempts + 1 >= PUSH_ATTEMPTS:
                    self.push_failures += 1
                    print(f"push of event {code} from {serial} given up: {exc}", flush=True)
                else:
                    later = until + timedelta(seconds=PUSH_RETRY_DELAY_S)
                    self._unsent.append((at, i, code, attempts + 1, later))
                continue
            sent.append((serial, at, code))
        return sent

    async def _push_incidents(self, poll_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(poll_s)
            await self.push_due()

    def _push_from_meter(self, i: int) -> Callable[[], None]:
        def trigger() -> None:
            serial = self.meters[i].serial
            ciphered = True
            task = asyncio.get_running_loop().create_task(
                self.push_alarm(serial, alarm=self._state(i).alarm or 1, ciphered=ciphered)
            )
            self._push_tasks.add(task)
            task.add_done_callback(self._push_tasks.discard)

        return trigger

    # --- connections ------------------------------------------------------------------------

    def _bind(self, conn: _Conn, i: int) -> bool:
        if conn.index is None:
            if not 0 <= i < len(self.meters):
                return False
            conn.index = i
            meter = self.meters[i]
            conn.session = Session(
                meter,
                self._state(i),
                self.now,
                server_address=1 if self.per_meter_ports else i + 1,
                push=self._push_from_meter(i),
            )
            conn.silent = bool(meter.fault and meter.fault.kind == "timeout")
            return True
        return conn.index == i

    async def _serve(self, reader, writer, fixed: int | None) -> None:
        conn = _Conn(writer)
        self._conns.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        decoder = WrapperStream() if self.interface == "wrapper" else HdlcStream()
        try:
            if fixed is not None:
                self._bind(conn, fixed)
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(4096), self.idle_timeout)
                except TimeoutError:
                    break
                if not data:
                    break
                try:
                    frames = decoder.feed(data)
                except FrameError:
                    break  # unrecoverable WRAPPER framing: drop the connection
                for frame in frames:
                    if isinstance(frame, FrameError):
                        continue
                    if isinstance(frame, HdlcFrame):
                        replies = self._on_hdlc(conn, frame, fixed)
                    else:
                        replies = self._on_wrapper(conn, frame, fixed)
                    for r in replies:
                        if not await self._send(conn, r):
                            return
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # close() cancels handlers (e.g. a "late" reply asleep); ending normally keeps
            # asyncio's client_connected_cb callback from logging a CancelledError traceback
            pass
        finally:
            self._conns.discard(conn)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    def add_concentrator(
        self, wport: int, serial: str, addresses: list[int], collect_period_s: int = 900
    ) -> None:
        """Serve at `wport` (WRAPPER, one listener) a data concentrator's own logical device
        whose collected data are the meters at `addresses` (channels 1..n in that order; the
        layout of protocols/dlms/dc_layout.py), as a concentrator in front of them would."""
        if self.per_meter_ports or self.interface != "wrapper":
            raise ValueError("a concentrator is served on the one WRAPPER listener")
        if wport <= len(self.meters) or wport > 0xFFFF or wport in self.concentrators:
            raise ValueError(f"wPort {wport} is a meter's or taken")
        if not all(1 <= a <= len(self.meters) for a in addresses):
            raise ValueError("a concentrator's meters are addresses of this fleet")
        channels = MeterChannels(
            self.meters, self._state, [a - 1 for a in addresses], collect_period_s
        )
        self.concentrators[wport] = (
            SimulatedMeter(serial=serial),
            MeterState(),
            ConcentratorObjects(channels),
        )

    def _on_concentrator(self, conn: _Conn, frame: ApduFrame) -> list[bytes]:
        src, dst = frame.source, frame.destination
        device, state, objects = self.concentrators[dst]
        session = conn.dc_sessions.get(dst)
        if session is None:
            session = conn.dc_sessions[dst] = Session(
                device, state, self.now, server_address=dst, objects=objects
            )
        conn.silent = False
        try:
            resp = session.handle(src, frame.apdu)
        except SimProtocolError:
            resp = A.exception_response(2, 2)
        return [wrapper_encode(dst, src, resp)] if resp is not None else []

    def _on_wrapper(self, conn: _Conn, frame: ApduFrame, fixed: int | None) -> list[bytes]:
        src, dst, apdu = frame.source, frame.destination, frame.apdu
        if fixed is None and dst in self.concentrators:
            return self._on_concentrator(conn, frame)
        if fixed is not None:
            if dst != 1:
                return []
        elif not self._bind(conn, dst - 1):
            return []
        assert conn.session is not None
        try:
            resp = conn.session.handle(src, apdu)
        except SimProtocolError:
            resp = A.exception_response(2, 2)
        return [wrapper_encode(dst, src, resp)] if resp is not None else []

    def _on_hdlc(self, conn: _Conn, frame: HdlcFrame, fixed: int | None) -> list[bytes]:
        upper = frame.destination.upper
        if fixed is not None:
            if upper != 1:
                return []
        elif not self._bind(conn, upper - 1):
            return []
        assert conn.session is not None
        if conn.link is None or conn.link.server != frame.destination:
            conn.link = HdlcLink(frame.destination, max_info=self.meters[conn.index].hdlc_max_info)
        try:
            out, apdu = conn.link.handle(frame)
            if apdu is not None:
                try:
                    resp = conn.session.handle(frame.source.upper, apdu)
                except SimProtocolError:
                    resp = A.exception_response(2, 2)
                if resp is not None:
                    out.append(conn.link.send_apdu(resp))
            return out
        except SimProtocolError:
            return []

    async def _send(self, conn: _Conn, data: bytes) -> bool:
        """Write one reply applying the meter's fault; False when the connection is gone."""
        if conn.silent:
            return True
        conn.replies += 1
        fault = self.meters[conn.index].fault if conn.index is not None else None
        w = conn.writer
        if fault is not None:
            if fault.kind == "late":
                await asyncio.sleep(fault.delay_s)
            elif fault.kind == "corrupt" and conn.replies >= fault.at_reply:
                mid = len(data) // 2
                data = data[:mid] + bytes((data[mid] ^ 0xFF,)) + data[mid + 1 :]
            elif fault.kind == "reset" and conn.replies == fault.at_reply:
                w.write(data[: max(1, len(data) // 2)])
                await w.drain()
                await asyncio.sleep(0.05)
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
                return False
        w.write(data)
        await w.drain()
        return True


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
