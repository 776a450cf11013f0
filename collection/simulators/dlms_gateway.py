"""A simulated DLMS data concentrator acting as a gateway (no Django).

One TCP endpoint; the WRAPPER destination wPort selects the logical device:

* wPort 1 is the concentrator itself (its management logical device: its own serial as the
  logical device name, its own clock), so the head-end can tell "the concentrator answers"
  from "a meter behind it answers";
* the meters behind it answer at ``first_wport + i`` (meter ``i`` in the order given), each an
  ordinary simulated meter on the shared value model, so what is stored through the gateway
  can be checked exactly.

One connection may carry associations to several logical devices (a session per connection
and wPort), as a gateway's does. ``max_connections`` makes it refuse connections beyond that
many at once (a concentrator's limit); ``peak_connections`` is the most it ever had open and
``peak_associations`` the most associations open at once (AARQ to RLRQ: what a head-end that
takes turns keeps at its limit, whereas sockets may linger a moment after a release).
``unplug(serial)`` takes a meter off the concentrator's side (power-line link lost: its wPort
stays silent) while the concentrator answers; stopping the gateway is the concentrator lost.

The concentrator also collects its meters itself, every ``collect_period_s`` (aligned to the
hour), and offers that copy in its own logical device (wPort 1), meter ``i`` on channel
``i + 1`` (``protocols/dlms/dc_layout.py``, ``simulators/dlms/dc_data.py``): the meter list,
and per channel the meter's serial, when the copy was collected, its registers, load profile
and event log as of then. An unplugged meter's copy stops at its last collection before it
was unplugged; ``forget(serial)`` drops a meter from the concentrator's list altogether.

    gateway = DlmsGateway(make_meters(4), serial="DC-1")
    async with gateway:
        host, port, wport = gateway.address_of(meters[0].serial)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from ..protocols.dlms import dc_layout
from ..protocols.dlms.framing import ApduFrame, wrapper_encode
from .dlms import apdu as A
from .dlms.dc_data import ConcentratorObjects
from .dlms.errors import SimProtocolError
from .dlms.meter import MeterState, SimulatedMeter
from .dlms.session import Session
from .dlms_fleet import DlmsFleet, MeterAddress

MANAGEMENT_WPORT = 1  # the concentrator's own logical device
FIRST_WPORT = 16  # the first meter behind it


class DlmsGateway(DlmsFleet):
    """A concentrator on one listener: itself at wPort 1, its meters from ``first_wport``."""

    def __init__(
        self,
        meters: Iterable[SimulatedMeter],
        *,
        serial: str = "DC-SIM-1",
        first_wport: int = FIRST_WPORT,
        max_connections: int | None = None,
        collect_period_s: int = 900,
        **kwargs,
    ) -> None:
        if kwargs.get("interface", "wrapper") != "wrapper" or kwargs.get("per_meter_ports"):
            raise ValueError("a gateway is one WRAPPER listener")
        super().__init__(meters, **kwargs)
        if first_wport <= MANAGEMENT_WPORT or first_wport + len(self.meters) > 0xFFFF:
            raise ValueError("the meters' wPorts must lie above the concentrator's own (1)")
        self.serial = serial
        self.first_wport = first_wport
        self.max_connections = max_connections
        self.device = SimulatedMeter(serial=serial)  # the concentrator's logical device
        self.device_state = MeterState()
        self.unplugged: set[str] = set()
        self.unplugged_at: dict[str, datetime] = {}
        self.forgotten: set[str] = set()
        if not 60 <= collect_period_s <= 86400:
            raise ValueError("the concentrator collects its meters every 60 s to a day")
        self.collect_period_s = collect_period_s
        self.own_objects = ConcentratorObjects(self)
        self.open_connections = 0
        self.peak_connections = 0
        self.refused = 0
        self._sessions: dict[tuple[int, int], Session] = {}  # (connection, wPort) -> session
        self._associated: set[tuple[int, int]] = set()  # between AARQ and RLRQ (or the close)
        self.peak_associations = 0

    def address_of(self, serial: str) -> MeterAddress:
        return MeterAddress(self.host, self._ports[0], self.first_wport + self._index[serial])

    @property
    def own_address(self) -> MeterAddress:
        """Where the concentrator itself answers (its management logical device)."""
        return MeterAddress(self.host, self._ports[0], MANAGEMENT_WPORT)

    def unplug(self, serial: str) -> None:
        if serial not in self.unplugged:
            self.unplugged_at[serial] = self.now()
        self.unplugged.add(serial)

    def plug(self, serial: str) -> None:
        self.unplugged.discard(serial)
        self.unplugged_at.pop(serial, None)

    def forget(self, serial: str) -> None:
        """The concentrator drops the meter from its list (and its copy of it)."""
        self.forgotten.add(serial)

    def reported(self) -> list[str]:
        """The serials of the meters the concentrator reports (those it can reach)."""
        return [m.serial for m in self.meters if m.serial not in self.unplugged]

    # --- its own collected data (dc_data.Collector) ---------------------------------------

    def channel_of(self, serial: str) -> int:
        return self._index[serial] + 1

    def on_channel(self, channel: int):
        i = channel - 1
        if not 0 <= i < min(len(self.meters), dc_layout.MAX_CHANNEL):
            return None
        if self.meters[i].serial in self.forgotten:
            return None
        return self.meters[i], self._state(i)

    def collected_at(self, channel: int, now: datetime) -> datetime:
        """When the concentrator last collected the meter on `channel` (as of `now`)."""
        period = self.collect_period_s
        at = int(now.timestamp()) // period * period
        unplugged = self.unplugged_at.get(self.meters[channel - 1].serial)
        if unplugged is not None:
            at = min(at, int(unplugged.timestamp()) // period * period)
        return datetime.fromtimestamp(at, UTC)

    def meter_list(self, now: datetime) -> list[dc_layout.Entry]:
        return [
            dc_layout.Entry(channel, meter.serial, self.collected_at(channel, now))
            for channel, meter in enumerate(self.meters[: dc_layout.MAX_CHANNEL], start=1)
            if meter.serial not in self.forgotten
        ]

    async def _serve(self, reader, writer, fixed: int | None) -> None:
        if self.max_connections is not None and self.open_connections >= self.max_connections:
            self.refused += 1
            writer.close()
            return
        self.open_connections += 1
        self.peak_connections = max(self.peak_connections, self.open_connections)
        try:
            await super()._serve(reader, writer, fixed)
        finally:
            self.open_connections -= 1
            conn_id = id(writer)
            for key in [k for k in self._sessions if k[0] == conn_id]:
                del self._sessions[key]
                self._associated.discard(key)

    def _on_wrapper(self, conn, frame: ApduFrame, fixed: int | None) -> list[bytes]:
        src, dst = frame.source, frame.destination
        if dst == MANAGEMENT_WPORT:
            meter, state, index, push = self.device, self.device_state, None, None
        else:
            i = dst - self.first_wport
            if not 0 <= i < len(self.meters) or self.meters[i].serial in self.unplugged:
                return []  # no such meter behind it, or it cannot reach it: silence
            meter, state, index, push = self.meters[i], self._state(i), i, self._push_from_meter(i)
        key = (id(conn.writer), dst)
        session = self._sessions.get(key)
        if session is None:
            objects = self.own_objects if dst == MANAGEMENT_WPORT else None
            session = Session(
                meter, state, self.now, server_address=dst, push=push, objects=objects
            )
            self._sessions[key] = session
        conn.index = index  # the answering meter's faults apply to this reply
        conn.silent = bool(meter.fault and meter.fault.kind == "timeout")
        tag = frame.apdu[:1]
        if tag == bytes((A.AARQ,)):
            self._associated.add(key)
            self.peak_associations = max(self.peak_associations, len(self._associated))
        try:
            resp = session.handle(src, frame.apdu)
        except SimProtocolError:
            resp = A.exception_response(2, 2)
        if tag == bytes((A.RLRQ,)):
            self._associated.discard(key)
        return [wrapper_encode(dst, src, resp)] if resp is not None else []


__all__ = ["FIRST_WPORT", "MANAGEMENT_WPORT", "DlmsGateway"]
