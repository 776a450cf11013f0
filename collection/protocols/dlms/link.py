"""Data-link layers over a :class:`Transport`: WRAPPER and HDLC."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

from ..base import Exchange, utcnow
from ..errors import ConnectionFailed, FrameError, MeterTimeout, ProtocolError
from ..transport import Transport
from . import framing as fr
from . import redact

HIDE_ALL = 1 << 30  # a span past the end of any frame
MAX_DUPLICATES = 8  # repeated I-frames skipped before the link is out of step
FRAME_OVERHEAD = 3  # FCS and closing flag after an HDLC information field


@dataclass
class _Frame:
    """A frame waiting for its request to finish, so its secrets are known before it is kept."""

    direction: str
    raw: bytes
    at: datetime
    info_at: int | None = None  # where the information field starts in `raw`
    info_len: int = 0
    apdu_at: int | None = None  # position of the information field in its APDU
    hdlc: bool = False


class Recorder:
    """The exchange log's only writer: every frame is redacted (redact.py) before it is kept.

    Frames of a request are held until the request ends (answered or failed): the request
    APDU says what its answer may hide, so both are masked before either reaches the log.
    `secrets` (the session's password and keys) are masked wherever they appear, besides.
    """

    def __init__(self, log: list[Exchange] | None, secrets=()) -> None:
        self.log = log
        self.secrets = [bytes(s) for s in secrets if s and len(s) >= 4]
        self.pending: list[_Frame] | None = None
        self.last_rx: _Frame | None = None

    def add(self, direction: str, raw: bytes, **where) -> None:
        if self.log is None:
            return
        frame = _Frame(direction, bytes(raw), utcnow(), **where)
        if direction == "rx":
            self.last_rx = frame
        if self.pending is None:
            self._keep(frame, [])
        else:
            self.pending.append(frame)

    @contextlib.contextmanager
    def request(self, apdu: bytes):
        """Hold the frames of one request; `answer(payload)` once the reply is reassembled."""
        if self.log is None:
            yield lambda payload: None
            return
        self.pending, answered = [], []
        try:
            yield answered.append
        finally:
            frames, self.pending = self.pending, None
            tx = redact.secret_spans(apdu)
            if answered:
                rx = redact.secret_spans(answered[0], answering=apdu)
            elif tx or redact.is_secret_request(apdu):
                rx = [(0, HIDE_ALL)]  # no whole answer to parse: hide all of it
            else:
                rx = []
            for frame in frames:
                self._keep(frame, tx if frame.direction == "tx" else rx)

    def _keep(self, frame: _Frame, spans) -> None:
        raw = frame.raw
        if frame.info_at is not None and frame.info_len:
            if frame.apdu_at is None:  # information not placed in the APDU: all of it
                local = [(0, frame.info_len)] if spans else []
            else:
                local = [(a - frame.apdu_at, b - frame.apdu_at) for a, b in spans]
            local = [(max(0, a), min(frame.info_len, b)) for a, b in local]
            spans = [(frame.info_at + a, frame.info_at + b) for a, b in local if a < b]
        else:
            spans = []
        raw = redact.mask_frame(raw, spans, hdlc=frame.hdlc, secrets=self.secrets)
        if self.log is not None:  # add() and request() keep nothing without a log
            self.log.append(Exchange(frame.direction, raw, frame.at))


class Link:
    def __init__(self, transport: Transport, log: list[Exchange] | None, secrets=()) -> None:
        self.transport = transport
        self.recorder = Recorder(log, secrets)

    async def _send(self, data: bytes, **where) -> None:
        self.recorder.add("tx", data, **where)
        await self.transport.write(data)

    def _received(self, data: bytes, **where) -> None:
        self.recorder.add("rx", data, **where)

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def request(self, apdu: bytes) -> bytes:
        raise NotImplementedError


class WrapperLink(Link):
    def __init__(
        self,
        transport: Transport,
        client: int,
        server: int,
        timeout: float,
        log: list[Exchange] | None = None,
        secrets=(),
    ) -> None:
        super().__init__(transport, log, secrets)
        self.client = client
        self.server = server
        self.timeout = timeout

    async def request(self, apdu: bytes) -> bytes:
        with self.recorder.request(apdu) as answered:
            await self._send(
                fr.wrapper_encode(self.client, self.server, apdu),
                info_at=fr.WRAPPER_HEADER_LEN,
                info_len=len(apdu),
                apdu_at=0,
            )
            payload = await self.receive()
            answered(payload)
            return payload

    async def receive(self) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        header = await self.transport.read_exactly(fr.WRAPPER_HEADER_LEN, deadline)
        src, dst, length = fr.wrapper_parse_header(header)
        payload = await self.transport.read_exactly(length, deadline) if length else b""
        self._received(
            header + payload, info_at=fr.WRAPPER_HEADER_LEN, info_len=len(payload), apdu_at=0
        )
        if src != self.server or dst != self.client:
            raise FrameError(
                f"WRAPPER frame for {src}->{dst}, expected {self.server}->{self.client}"
            )
        if not payload:
            raise FrameError("empty WRAPPER frame")
        return payload


class HdlcLink(Link):
    """HDLC (window 1) with segmentation and retransmission on timeout/bad frame."""

    MAX_SKIP = 4096

    def __init__(
        self,
        transport: Transport,
        client: int,
        server: int,
        physical: int | None,
        timeout: float,
        retries: int,
        max_info: int,
        log: list[Exchange] | None = None,
        secrets=(),
    ) -> None:
        super().__init__(transport, log, secrets)
        self.client_addr = fr.encode_client_address(client)
        self.server_addr = fr.encode_server_address(server, physical)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.requested = fr.HdlcParameters(max_info, max_info, 1, 1)
        self.params = self.requested
        self.ns = 0
        self.nr = 0
        self._at_flag = False
        self.connected = False

    # -- frame I/O -----------------------------------------------------
    async def read_frame(self) -> fr.HdlcFrame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        t = self.transport
        if not self._at_flag:
            skipped = 0
            while await t.read_byte(deadline) != fr.FLAG:
                skipped += 1
                if skipped > self.MAX_SKIP:
                    raise FrameError("no HDLC flag in received bytes")
        self._at_flag = False
        b = fr.FLAG
        while b == fr.FLAG:
            b = await t.read_byte(deadline)
        second = await t.read_byte(deadline)
        fmt = bytes((b, second))
        length = fr.hdlc_frame_length(fmt)
        rest = await t.read_exactly(length - 2 + 1, deadline)
        body = fmt + rest[:-1]
        raw = b"\x7e" + body + rest[-1:]
        try:
            frame = fr.hdlc_parse(body)
        except ProtocolError:
            # Unparsed: the whole frame counts as information, masked if the request says so.
            self._received(raw, info_at=0, info_len=len(raw), hdlc=False)
            raise
        info_len = len(frame.info)
        self._received(
            raw, info_at=len(raw) - FRAME_OVERHEAD - info_len, info_len=info_len, hdlc=True
        )
        if rest[-1] != fr.FLAG:
            raise FrameError("HDLC closing flag missing")
        self._at_flag = True
        if frame.destination.encode() != self.client_addr:
            raise FrameError(f"HDLC frame for address {frame.destination.encode().hex()}")
        if frame.unnumbered in (fr.FRMR,):
            raise ConnectionFailed("meter rejected our frame (FRMR)")
        return frame

    async def _exchange(self, frame: bytes, **where) -> fr.HdlcFrame:
        """Send ``frame``; return the answer, retransmitting on timeout/garbage."""
        last: ProtocolError = MeterTimeout("no HDLC answer")
        for _attempt in range(self.retries + 1):
            await self._send(frame, **where)
            try:
                return await self.read_frame()
            except (MeterTimeout, FrameError) as ex:
                last = ex
                self._at_flag = False
        raise last

    # -- link management -------------------------------------------------
    async def connect(self) -> None:
        snrm = fr.hdlc_encode(
            self.server_addr, self.client_addr, fr.SNRM, fr.snrm_info(self.requested)
        )
        answer = await self._exchange(snrm)
        if answer.unnumbered == fr.DM:
            raise ConnectionFailed("meter refused the HDLC connection (DM)")
        if answer.unnumbered != fr.UA:
            raise FrameError(f"expected UA, got control 0x{answer.control:02x}")
        self.params = fr.parse_ua_info(answer.info, self.requested)
        self.ns = self.nr = 0
        self.connected = True

    async def disconnect(self) -> None:
        if not self.connected:
            return
        self.connected = False
        disc = fr.hdlc_encode(self.server_addr, self.client_addr, fr.DISC)
        await self._send(disc)
        try:
            await self.read_frame()
        except ProtocolError:
            pass

    # -- data ----------------------------------------------------------------
    async def request(self, apdu: bytes) -> bytes:
        if not self.connected:
            raise ConnectionFailed("HDLC link not connected")
        with self.recorder.request(apdu) as answered:
            payload = await self._request(apdu)
            answered(payload)
            return payload

    async def _request(self, apdu: bytes) -> bytes:
        data = fr.LLC_REQUEST + apdu
        llc = fr.LLC_LEN
        size = self.params.max_info_tx
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        answer: fr.HdlcFrame | None = None
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            frame = fr.hdlc_encode(
                self.server_addr,
                self.client_addr,
                fr.i_control(self.ns, self.nr),
                chunk,
                segmented=not last,
            )
            answer = await self._exchange(
                frame,
                info_at=len(frame) - FRAME_OVERHEAD - len(chunk),
                info_len=len(chunk),
                apdu_at=i * size - llc,
                hdlc=True,
            )
            self.ns = (self.ns + 1) & 7
            if not last:
                if not answer.is_rr:
                    raise FrameError("expected RR for a segmented request")
        if answer is None:  # chunks always holds one segment at least
            raise FrameError("no HDLC segment sent")
        parts: list[bytes] = []
        accepted = []
        skipped = 0
        while True:
            if answer.unnumbered == fr.DM or answer.unnumbered == fr.DISC:
                self.connected = False
                raise ConnectionFailed("meter dropped the HDLC link")
            if not answer.is_information:
                raise FrameError(f"expected I-frame, got control 0x{answer.control:02x}")
            if answer.send_seq != self.nr:
                # Duplicate (our retransmission was answered twice): ignore it.
                skipped += 1
                if skipped > MAX_DUPLICATES:
                    raise FrameError("HDLC receive sequence out of step")
                answer = await self.read_frame()
                continue
            self.nr = (self.nr + 1) & 7
            if self.recorder.last_rx is not None:
                self.recorder.last_rx.apdu_at = sum(map(len, parts))  # LLC header: see below
                accepted.append(self.recorder.last_rx)
            parts.append(answer.info)
            if not answer.segmented:
                break
            rr = fr.hdlc_encode(self.server_addr, self.client_addr, fr.rr_control(self.nr))
            answer = await self._exchange(rr)
        payload = b"".join(parts)
        strip = 0
        if payload[: fr.LLC_LEN] == fr.LLC_RESPONSE:
            strip = fr.LLC_LEN
        elif payload[:2] == fr.LLC_RESPONSE[:2]:  # LLC without its quality byte
            strip = 2
        payload = payload[strip:]
        for frame in accepted:  # positions in the APDU, not in the LLC-prefixed stream
            frame.apdu_at -= strip
        if not payload:
            raise FrameError("empty HDLC information field")
        return payload
