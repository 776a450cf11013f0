"""Data-link layers over a :class:`Transport`: WRAPPER and HDLC."""

from __future__ import annotations

import asyncio

from ..base import Exchange, utcnow
from ..errors import ConnectionFailed, FrameError, MeterTimeout, ProtocolError
from ..transport import Transport
from . import framing as fr


class Link:
    def __init__(self, transport: Transport, log: list[Exchange] | None) -> None:
        self.transport = transport
        self.log = log

    async def _send(self, data: bytes) -> None:
        if self.log is not None:
            self.log.append(Exchange("tx", bytes(data), utcnow()))
        await self.transport.write(data)

    def _received(self, data: bytes) -> None:
        if self.log is not None:
            self.log.append(Exchange("rx", bytes(data), utcnow()))

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
    ) -> None:
        super().__init__(transport, log)
        self.client = client
        self.server = server
        self.timeout = timeout

    async def request(self, apdu: bytes) -> bytes:
        await self._send(fr.wrapper_encode(self.client, self.server, apdu))
        return await self.receive()

    async def receive(self) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        header = await self.transport.read_exactly(8, deadline)
        src, dst, length = fr.wrapper_parse_header(header)
        payload = await self.transport.read_exactly(length, deadline) if length else b""
        self._received(header + payload)
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
    ) -> None:
        super().__init__(transport, log)
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
        self._received(b"\x7e" + body + rest[-1:])
        if rest[-1] != fr.FLAG:
            raise FrameError("HDLC closing flag missing")
        self._at_flag = True
        frame = fr.hdlc_parse(body)
        if frame.destination != self.client_addr:
            raise FrameError(f"HDLC frame for address {frame.destination.hex()}")
        if frame.unnumbered in (fr.FRMR,):
            raise ConnectionFailed("meter rejected our frame (FRMR)")
        return frame

    async def _exchange(self, frame: bytes) -> fr.HdlcFrame:
        """Send ``frame``; return the answer, retransmitting on timeout/garbage."""
        last: ProtocolError | None = None
        for _attempt in range(self.retries + 1):
            await self._send(frame)
            try:
                return await self.read_frame()
            except (MeterTimeout, FrameError) as ex:
                last = ex
                self._at_flag = False
        assert last is not None
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
        data = fr.LLC_REQUEST + apdu
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
            answer = await self._exchange(frame)
            self.ns = (self.ns + 1) & 7
            if not last:
                if not answer.is_rr:
                    raise FrameError("expected RR for a segmented request")
        assert answer is not None
        parts: list[bytes] = []
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
                if skipped > 8:
                    raise FrameError("HDLC receive sequence out of step")
                answer = await self.read_frame()
                continue
            self.nr = (self.nr + 1) & 7
            parts.append(answer.info)
            if not answer.segmented:
                break
            rr = fr.hdlc_encode(self.server_addr, self.client_addr, fr.rr_control(self.nr))
            answer = await self._exchange(rr)
        payload = b"".join(parts)
        if payload[:3] == fr.LLC_RESPONSE:
            payload = payload[3:]
        elif payload[:2] == b"\xe6\xe7":
            payload = payload[2:]
        if not payload:
            raise FrameError("empty HDLC information field")
        return payload
