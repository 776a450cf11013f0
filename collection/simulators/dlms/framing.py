"""Transport framings of the simulated meter: DLMS WRAPPER (TCP) and HDLC (IEC 62056-46).

Sans-IO: ``WrapperDecoder``/``HdlcDecoder`` split a byte stream into frames, ``HdlcLink`` is
the server (secondary station) side of the HDLC data link: SNRM/UA with parameter
negotiation, numbered I-frames, RR, segmentation in both directions, DISC/UA/DM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import FrameError

# --- WRAPPER -------------------------------------------------------------------------------

WRAPPER_VERSION = 1
WRAPPER_HEADER = 8
MAX_WRAPPER_APDU = 0xFFFF


def wrap(source: int, destination: int, apdu: bytes) -> bytes:
    if len(apdu) > MAX_WRAPPER_APDU:
        raise FrameError("APDU too long for a WRAPPER frame")
    return (
        WRAPPER_VERSION.to_bytes(2, "big")
        + source.to_bytes(2, "big")
        + destination.to_bytes(2, "big")
        + len(apdu).to_bytes(2, "big")
        + apdu
    )


class WrapperDecoder:
    """Accumulate bytes; ``frames()`` yields complete ``(source, destination, apdu)``."""

    def __init__(self, max_apdu: int = MAX_WRAPPER_APDU) -> None:
        self.buf = bytearray()
        self.max_apdu = max_apdu

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= WRAPPER_HEADER:
            version = int.from_bytes(self.buf[0:2], "big")
            if version != WRAPPER_VERSION:
                raise FrameError(f"WRAPPER version {version} != 1")
            length = int.from_bytes(self.buf[6:8], "big")
            if length == 0 or length > self.max_apdu:
                raise FrameError(f"bad WRAPPER length {length}")
            if len(self.buf) < WRAPPER_HEADER + length:
                break
            src = int.from_bytes(self.buf[2:4], "big")
            dst = int.from_bytes(self.buf[4:6], "big")
            out.append((src, dst, bytes(self.buf[8 : 8 + length])))
            del self.buf[: 8 + length]
        return out


# --- HDLC frame codec ----------------------------------------------------------------------

FLAG = 0x7E
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"
SNRM, DISC, UA, DM, FRMR, UI = 0x83, 0x43, 0x63, 0x0F, 0x87, 0x03
PF = 0x10
MAX_FRAME = 0x7FF


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x8408 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/X.25 (HDLC FCS): reflected poly 0x1021, init/xorout 0xFFFF."""
    c = 0xFFFF
    for b in data:
        c = (c >> 8) ^ _CRC[(c ^ b) & 0xFF]
    return c ^ 0xFFFF


def _fcs(data: bytes) -> bytes:
    return crc16(data).to_bytes(2, "little")


@dataclass
class HdlcAddress:
    upper: int
    lower: int | None
    size: int  # 1, 2 or 4 octets as seen on the wire

    def encode(self) -> bytes:
        if self.size == 1:
            return bytes(((self.upper << 1) | 1,))
        lower = self.lower or 0
        if self.size == 2:
            return bytes(((self.upper & 0x7F) << 1, ((lower & 0x7F) << 1) | 1))
        return bytes(
            (
                ((self.upper >> 7) & 0x7F) << 1,
                (self.upper & 0x7F) << 1,
                ((lower >> 7) & 0x7F) << 1,
                ((lower & 0x7F) << 1) | 1,
            )
        )


def _parse_address(b: bytes, pos: int, limit: int) -> tuple[list[int], int]:
    parts = []
    while True:
        if pos >= limit:
            raise FrameError("truncated HDLC address")
        parts.append(b[pos])
        pos += 1
        if b[pos - 1] & 1:
            return parts, pos
        if len(parts) >= 4:
            raise FrameError("HDLC address longer than 4 octets")


@dataclass
class HdlcFrame:
    destination: HdlcAddress
    source: HdlcAddress
    control: int
    info: bytes = b""
    segmented: bool = False

    @property
    def poll(self) -> bool:
        return bool(self.control & PF)

    def encode(self) -> bytes:
        addr = self.destination.encode() + self.source.encode()
        length = 2 + len(addr) + 1 + 2 + (len(self.info) + 2 if self.info else 0)
        if length > MAX_FRAME:
            raise FrameError("HDLC frame too long")
        fmt = 0xA000 | (0x0800 if self.segmented else 0) | length
        head = fmt.to_bytes(2, "big") + addr + bytes((self.control,))
        if self.info:
            head += _fcs(head)
            body = head + self.info
        else:
            body = head
        return bytes((FLAG,)) + body + _fcs(body) + bytes((FLAG,))


def parse_hdlc_frame(frame: bytes) -> HdlcFrame:
    """Parse one frame given WITHOUT its opening/closing flags."""
    if len(frame) < 7:
        raise FrameError("HDLC frame too short")
    fmt = int.from_bytes(frame[0:2], "big")
    if fmt & 0xF000 != 0xA000:
        raise FrameError("not an HDLC type 3 frame")
    length = fmt & 0x07FF
    if length != len(frame):
        raise FrameError(f"HDLC length {length} != {len(frame)}")
    if _fcs(frame[:-2]) != frame[-2:]:
        raise FrameError("bad FCS")
    dst, pos = _parse_address(frame, 2, len(frame) - 2)
    src, pos = _parse_address(frame, pos, len(frame) - 2)
    if pos >= len(frame) - 2:
        raise FrameError("HDLC frame without control field")
    control = frame[pos]
    pos += 1
    info = b""
    if pos < len(frame) - 2:
        if pos + 2 > len(frame) - 2:
            raise FrameError("truncated HCS")
        if _fcs(frame[:pos]) != frame[pos : pos + 2]:
            raise FrameError("bad HCS")
        info = bytes(frame[pos + 2 : -2])
    if len(src) != 1:
        raise FrameError("client HDLC address must be one octet")
    if len(dst) == 3:
        raise FrameError("3-octet server address")
    if len(dst) == 1:
        d = HdlcAddress(dst[0] >> 1, None, 1)
    elif len(dst) == 2:
        d = HdlcAddress(dst[0] >> 1, dst[1] >> 1, 2)
    else:
        d = HdlcAddress(
            ((dst[0] >> 1) << 7) | (dst[1] >> 1), ((dst[2] >> 1) << 7) | (dst[3] >> 1), 4
        )
    return HdlcFrame(d, HdlcAddress(src[0] >> 1, None, 1), control, info, bool(fmt & 0x0800))


class HdlcDecoder:
    """Split a byte stream into HDLC frames (flag delimited; the length field is trusted)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[HdlcFrame | FrameError]:
        """Return parsed frames, or ``FrameError`` items for frames that failed checks."""
        self.buf += data
        out: list[HdlcFrame | FrameError] = []
        while True:
            # skip inter-frame fill / stray bytes up to a flag
            while self.buf and self.buf[0] != FLAG:
                del self.buf[0]
            while len(self.buf) >= 2 and self.buf[1] == FLAG:
                del self.buf[0]  # consecutive flags
            if len(self.buf) < 3:
                return out
            fmt = int.from_bytes(self.buf[1:3], "big")
            length = fmt & 0x07FF
            if fmt & 0xF000 != 0xA000 or length < 7:
                out.append(FrameError("bad HDLC frame format"))
                del self.buf[0]
                continue
            if len(self.buf) < length + 2:
                return out
            raw = bytes(self.buf[1 : length + 1])
            if self.buf[length + 1] != FLAG:
                out.append(FrameError("missing closing flag"))
                del self.buf[0]
                continue
            del self.buf[: length + 1]  # keep the closing flag: it may open the next frame
            try:
                out.append(parse_hdlc_frame(raw))
            except FrameError as e:
                out.append(e)


# --- HDLC data link (server side) ------------------------------------------------------------


def _negotiation(info: bytes) -> dict[int, int]:
    params: dict[int, int] = {}
    if not info:
        return params
    if len(info) < 3 or info[0] != 0x81 or info[1] != 0x80:
        raise FrameError("bad SNRM parameter field")
    pos, end = 3, 3 + info[2]
    if end > len(info):
        raise FrameError("truncated SNRM parameters")
    while pos < end:
        if pos + 2 > end:
            raise FrameError("truncated SNRM parameter")
        pid, n = info[pos], info[pos + 1]
        if pos + 2 + n > end or n > 4:
            raise FrameError("bad SNRM parameter length")
        params[pid] = int.from_bytes(info[pos + 2 : pos + 2 + n], "big")
        pos += 2 + n
    return params


@dataclass
class HdlcLink:
    """Server side of one HDLC link; feed client frames, get frames to send back."""

    server: HdlcAddress
    max_info: int = 512  # the largest information field we accept / send
    connected: bool = False
    client: int = 0
    tx_max: int = 128
    rx_max: int = 128
    vs: int = 0
    vr: int = 0
    rx_buf: bytearray = field(default_factory=bytearray)
    tx_queue: list[bytes] = field(default_factory=list)
    last_sent: bytes | None = None

    def _frame(self, control: int, info: bytes = b"", segmented: bool = False) -> bytes:
        f = HdlcFrame(HdlcAddress(self.client, None, 1), self.server, control, info, segmented)
        return f.encode()

    def handle(self, frame: HdlcFrame) -> tuple[list[bytes], bytes | None]:
        """Process a client frame; return ``(frames to send, complete APDU or None)``."""
        ctl = frame.control & ~PF
        self.client = frame.source.upper
        if ctl == SNRM:
            params = _negotiation(frame.info)
            self.tx_max = max(32, min(self.max_info, params.get(0x06, 128)))
            self.rx_max = max(32, min(self.max_info, params.get(0x05, 128)))
            self.connected, self.vs, self.vr = True, 0, 0
            self.rx_buf.clear()
            self.tx_queue.clear()
            self.last_sent = None
            ua = (
                b"\x81\x80\x14"
                + b"\x05\x02"
                + self.tx_max.to_bytes(2, "big")
                + b"\x06\x02"
                + self.rx_max.to_bytes(2, "big")
                + b"\x07\x04\x00\x00\x00\x01\x08\x04\x00\x00\x00\x01"
            )
            return [self._frame(UA | PF, ua)], None
        if ctl == DISC:
            was = self.connected
            self.connected = False
            self.rx_buf.clear()
            self.tx_queue.clear()
            self.last_sent = None
            return [self._frame((UA if was else DM) | PF)], None
        if not self.connected:
            return [self._frame(DM | PF)], None
        if ctl & 0x01 == 0:  # I-frame
            ns = (frame.control >> 1) & 0x07
            if ns != self.vr:
                prev = (self.vr - 1) & 0x07
                if ns == prev and self.last_sent is not None:
                    return [self.last_sent], None  # retransmission: repeat our answer
                return [self._frame(0x01 | PF | (self.vr << 5))], None
            self.vr = (self.vr + 1) & 0x07
            self.rx_buf += frame.info
            if len(self.rx_buf) > 0x10000:
                raise FrameError("segmented APDU too long")
            if frame.segmented:
                return [self._frame(0x01 | PF | (self.vr << 5))], None
            data = bytes(self.rx_buf)
            self.rx_buf.clear()
            if not data.startswith(LLC_REQUEST) and not data.startswith(LLC_RESPONSE):
                raise FrameError("missing LLC header")
            return [], data[3:]
        if ctl & 0x0F == 0x01:  # RR
            nr = (frame.control >> 5) & 0x07
            if self.last_sent is not None and nr == (self.vs - 1) & 0x07:
                # N(R) unchanged: our last I-frame (segment) was not received; send it again
                return [self.last_sent], None
            if self.tx_queue:
                return [self._next_segment()], None
            return [self._frame(0x01 | PF | (self.vr << 5))], None
        if ctl & 0x0F == 0x05:  # RNR
            return [], None
        if ctl == UI:
            return [], None
        return [self._frame(FRMR | PF)], None

    def _next_segment(self) -> bytes:
        chunk = self.tx_queue.pop(0)
        more = bool(self.tx_queue)
        control = (self.vr << 5) | PF | (self.vs << 1)
        self.vs = (self.vs + 1) & 0x07
        self.last_sent = self._frame(control, chunk, segmented=more)
        return self.last_sent

    def send_apdu(self, apdu: bytes) -> bytes:
        """Queue a response APDU; return the first frame (the rest go out on RR)."""
        data = LLC_RESPONSE + apdu
        self.tx_queue = [data[i : i + self.tx_max] for i in range(0, len(data), self.tx_max)]
        return self._next_segment()
