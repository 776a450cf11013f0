"""Server (secondary station) side of the HDLC data link (IEC 62056-46) of a simulated meter.

Frames are encoded, parsed and split out of the byte stream by the shared codec
(:mod:`collection.protocols.dlms.framing`); what stays here is the meter's own link logic:
SNRM/UA with parameter negotiation, numbered I-frames, RR, segmentation in both directions,
DISC/UA/DM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...protocols.dlms.framing import (
    DEFAULT_MAX_INFO,
    DISC,
    DM,
    FRMR,
    LLC_LEN,
    LLC_REQUEST,
    LLC_RESPONSE,
    PARAM_MAX_INFO_RX,
    PARAM_MAX_INFO_TX,
    PF,
    RNR,
    SNRM,
    SUPERVISORY_MASK,
    UA,
    UI,
    HdlcAddress,
    HdlcFrame,
    encode_hdlc_parameters,
    i_control,
    parse_hdlc_parameters,
    rr_control,
)
from .errors import FrameError

MIN_INFO = 32  # the smallest information field the meter agrees to
WINDOW = 1  # frames in flight: one
SEQ_MASK = 0x07  # N(S)/N(R) count modulo 8
MAX_SEGMENTED_APDU = 0x10000  # the largest APDU accepted in segments


# --- HDLC data link (server side) ------------------------------------------------------------


@dataclass
class HdlcLink:
    """Server side of one HDLC link; feed client frames, get frames to send back."""

    server: HdlcAddress
    max_info: int = 512  # the largest information field we accept / send
    connected: bool = False
    client: int = 0
    tx_max: int = DEFAULT_MAX_INFO
    rx_max: int = DEFAULT_MAX_INFO
    vs: int = 0
    vr: int = 0
    rx_buf: bytearray = field(default_factory=bytearray)
    tx_queue: list[bytes] = field(default_factory=list)
    last_sent: bytes | None = None

    def _frame(self, control: int, info: bytes = b"", segmented: bool = False) -> bytes:
        return HdlcFrame(HdlcAddress(self.client), self.server, control, info, segmented).encode()

    def _rr(self) -> bytes:
        return self._frame(rr_control(self.vr))

    def handle(self, frame: HdlcFrame) -> tuple[list[bytes], bytes | None]:
        """Process a client frame; return ``(frames to send, complete APDU or None)``."""
        if frame.source.size != 1:
            raise FrameError("client HDLC address must be one octet")
        ctl = frame.control | PF
        self.client = frame.source.upper
        if ctl == SNRM:
            params = parse_hdlc_parameters(frame.info)
            # The client's transmit size is our receive size and vice versa.
            self.tx_max = max(
                MIN_INFO, min(self.max_info, params.get(PARAM_MAX_INFO_RX, DEFAULT_MAX_INFO))
            )
            self.rx_max = max(
                MIN_INFO, min(self.max_info, params.get(PARAM_MAX_INFO_TX, DEFAULT_MAX_INFO))
            )
            self.connected, self.vs, self.vr = True, 0, 0
            self.rx_buf.clear()
            self.tx_queue.clear()
            self.last_sent = None
            ua = encode_hdlc_parameters(self.tx_max, self.rx_max, WINDOW, WINDOW)
            return [self._frame(UA, ua)], None
        if ctl == DISC:
            was = self.connected
            self.connected = False
            self.rx_buf.clear()
            self.tx_queue.clear()
            self.last_sent = None
            return [self._frame(UA if was else DM)], None
        if not self.connected:
            return [self._frame(DM)], None
        if frame.is_information:
            ns = frame.send_seq
            if ns != self.vr:
                prev = (self.vr - 1) & SEQ_MASK
                if ns == prev and self.last_sent is not None:
                    return [self.last_sent], None  # retransmission: repeat our answer
                return [self._rr()], None
            self.vr = (self.vr + 1) & SEQ_MASK
            self.rx_buf += frame.info
            if len(self.rx_buf) > MAX_SEGMENTED_APDU:
                raise FrameError("segmented APDU too long")
            if frame.segmented:
                return [self._rr()], None
            data = bytes(self.rx_buf)
            self.rx_buf.clear()
            if not data.startswith(LLC_REQUEST) and not data.startswith(LLC_RESPONSE):
                raise FrameError("missing LLC header")
            return [], data[LLC_LEN:]
        if frame.is_rr:
            nr = frame.recv_seq
            if self.last_sent is not None and nr == (self.vs - 1) & SEQ_MASK:
                # N(R) unchanged: our last I-frame (segment) was not received; send it again
                return [self.last_sent], None
            if self.tx_queue:
                return [self._next_segment()], None
            return [self._rr()], None
        if ctl & SUPERVISORY_MASK == RNR:
            return [], None
        if ctl == UI:
            return [], None
        return [self._frame(FRMR)], None

    def _next_segment(self) -> bytes:
        chunk = self.tx_queue.pop(0)
        more = bool(self.tx_queue)
        control = i_control(self.vs, self.vr)
        self.vs = (self.vs + 1) & SEQ_MASK
        self.last_sent = self._frame(control, chunk, segmented=more)
        return self.last_sent

    def send_apdu(self, apdu: bytes) -> bytes:
        """Queue a response APDU; return the first frame (the rest go out on RR)."""
        data = LLC_RESPONSE + apdu
        self.tx_queue = [data[i : i + self.tx_max] for i in range(0, len(data), self.tx_max)]
        return self._next_segment()
