"""WRAPPER (IEC 62056-47) and HDLC (IEC 62056-46) framing and CRC, sans-IO.

Shared by the client (:mod:`.link`), the simulated meters (their server side of the HDLC
link) and the push listener (stream splitting).

``parse_*`` functions accept arbitrary bytes and raise only
:class:`FrameError` (or a subclass) on garbage.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import FrameError, FrameTooLarge

# ---------------------------------------------------------------- WRAPPER

WRAPPER_VERSION = 1
WRAPPER_HEADER = struct.Struct(">HHHH")
WRAPPER_HEADER_LEN = WRAPPER_HEADER.size
MAX_WRAPPER_APDU = 0xFFFF


def wrapper_encode(source: int, destination: int, apdu: bytes) -> bytes:
    if len(apdu) > MAX_WRAPPER_APDU:
        raise ValueError("APDU too long for WRAPPER")
    return WRAPPER_HEADER.pack(WRAPPER_VERSION, source, destination, len(apdu)) + apdu


def wrapper_parse_header(header: bytes) -> tuple[int, int, int]:
    """8 header bytes -> (source wport, destination wport, payload length)."""
    if len(header) != WRAPPER_HEADER_LEN:
        raise FrameError("WRAPPER header must be 8 bytes")
    version, src, dst, length = WRAPPER_HEADER.unpack(header)
    if version != WRAPPER_VERSION:
        raise FrameError(f"WRAPPER version {version} != 1")
    return src, dst, length


def wrapper_parse(frame: bytes) -> tuple[int, int, bytes]:
    """Whole WRAPPER frame -> (source, destination, apdu)."""
    src, dst, length = wrapper_parse_header(bytes(frame[:WRAPPER_HEADER_LEN]))
    if len(frame) != WRAPPER_HEADER_LEN + length:
        raise FrameError("WRAPPER length mismatch")
    return src, dst, bytes(frame[WRAPPER_HEADER_LEN:])


class ApduFrame(NamedTuple):
    """One APDU with the link addresses it came with (a NamedTuple: cheap per frame)."""

    source: int  # WRAPPER source wPort / HDLC upper source address
    destination: int  # WRAPPER destination wPort / HDLC upper destination address
    apdu: bytes


class WrapperStream:
    """WRAPPER frames out of a byte stream; holds at most one header + ``max_apdu`` bytes.

    A wrong version cannot be resynchronised (:class:`FrameError`); a frame announcing more
    than ``max_apdu`` bytes raises :class:`FrameTooLarge` before anything of it is held.
    """

    __slots__ = ("_buf", "max_apdu")

    def __init__(self, max_apdu: int = MAX_WRAPPER_APDU) -> None:
        self._buf = bytearray()
        self.max_apdu = max_apdu

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[ApduFrame]:
        buf = self._buf
        buf += data
        out: list[ApduFrame] = []
        pos = 0
        n = len(buf)
        while n - pos >= WRAPPER_HEADER_LEN:
            version, src, dst, length = WRAPPER_HEADER.unpack_from(buf, pos)
            if version != WRAPPER_VERSION:
                raise FrameError(f"WRAPPER version {version} != 1")
            if length > self.max_apdu:
                raise FrameTooLarge(f"WRAPPER frame of {length} bytes")
            end = pos + WRAPPER_HEADER_LEN + length
            if end > n:
                break
            out.append(ApduFrame(src, dst, bytes(buf[pos + WRAPPER_HEADER_LEN : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out


# ---------------------------------------------------------------- HDLC

FLAG = 0x7E
PF = 0x10  # poll/final bit of the control field
# Unnumbered frames, as sent (P/F set); compare with ``control | PF``.
SNRM = 0x93
DISC = 0x53
UA = 0x73
DM = 0x1F
FRMR = 0x97
UI = 0x13
RR = 0x01  # supervisory, low nibble
RNR = 0x05  # supervisory, low nibble
SUPERVISORY_MASK = 0x0F
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"
LLC_LEN = len(LLC_REQUEST)
FORMAT_TYPE_3 = 0xA000
FORMAT_TYPE_MASK = 0xF000
FORMAT_SEGMENTED = 0x0800
FORMAT_LENGTH_MASK = 0x07FF
MAX_FRAME = FORMAT_LENGTH_MASK  # bytes between the flags
MIN_FRAME = 7  # format(2) + destination(1) + source(1) + control(1) + FCS(2)
FCS_LEN = 2
HDLC_PARAMETERS_HEAD = b"\x81\x80"  # format identifier, group identifier
PARAM_MAX_INFO_TX = 5
PARAM_MAX_INFO_RX = 6
PARAM_WINDOW_TX = 7
PARAM_WINDOW_RX = 8
DEFAULT_MAX_INFO = 128
MIN_MAX_INFO = 16


_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16(data: bytes) -> int:
    """CRC-16/X-25 (HDLC FCS): init 0xFFFF, reflected 0x1021, xorout 0xFFFF.

    Computed in C by ``binascii.crc_hqx`` (the non-reflected CCITT CRC) on
    bit-reversed bytes; reversing the result gives the reflected CRC.
    """
    crc = binascii.crc_hqx(bytes(data).translate(_REVERSE), 0xFFFF)
    return ((_REVERSE[crc & 0xFF] << 8) | _REVERSE[crc >> 8]) ^ 0xFFFF


@dataclass(frozen=True, slots=True)
class HdlcAddress:
    """An HDLC address field: ``upper`` (client SAP / logical device), ``lower`` (physical)."""

    upper: int
    lower: int | None = None
    size: int = 1  # 1, 2 or 4 octets as seen on the wire

    @classmethod
    def client(cls, address: int) -> HdlcAddress:
        if not 0 <= address <= 0x7F:
            raise ValueError("HDLC client address must be 0..127")
        return cls(address)

    @classmethod
    def server(cls, logical: int, physical: int | None = None) -> HdlcAddress:
        """1 byte (logical only), else 2 or 4 bytes (upper + lower) as the values need."""
        if physical is None:
            if 0 <= logical <= 0x7F:
                return cls(logical)
            physical = 0
        if 0 <= logical <= 0x7F and 0 <= physical <= 0x7F:
            return cls(logical, physical, 2)
        if not (0 <= logical <= 0x3FFF and 0 <= physical <= 0x3FFF):
            raise ValueError("HDLC server address parts must be 0..16383")
        return cls(logical, physical, 4)

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

    @classmethod
    def decode(cls, raw: bytes) -> HdlcAddress:
        if len(raw) == 1:
            return cls(raw[0] >> 1)
        if len(raw) == 2:
            return cls(raw[0] >> 1, raw[1] >> 1, 2)
        if len(raw) == 4:
            return cls(
                ((raw[0] >> 1) << 7) | (raw[1] >> 1), ((raw[2] >> 1) << 7) | (raw[3] >> 1), 4
            )
        raise FrameError(f"invalid HDLC address size {len(raw)}")


def encode_client_address(address: int) -> bytes:
    return HdlcAddress.client(address).encode()


def encode_server_address(logical: int, physical: int | None = None) -> bytes:
    """Server HDLC address: 1 byte (logical only), 2 or 4 bytes (upper+lower)."""
    return HdlcAddress.server(logical, physical).encode()


def _read_address(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    start = pos
    while pos < end:
        b = buf[pos]
        pos += 1
        if b & 1:
            size = pos - start
            if size not in (1, 2, 4):
                raise FrameError(f"invalid HDLC address size {size}")
            return bytes(buf[start:pos]), pos
    raise FrameError("unterminated HDLC address")


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    destination: HdlcAddress
    source: HdlcAddress
    control: int
    info: bytes = b""
    segmented: bool = False

    @property
    def is_information(self) -> bool:
        return self.control & 1 == 0

    @property
    def send_seq(self) -> int:
        return (self.control >> 1) & 7

    @property
    def recv_seq(self) -> int:
        return (self.control >> 5) & 7

    @property
    def is_rr(self) -> bool:
        return self.control & SUPERVISORY_MASK == RR

    @property
    def unnumbered(self) -> int:
        return self.control | PF  # normalised with the P/F bit set

    @property
    def poll(self) -> bool:
        return bool(self.control & PF)

    def encode(self) -> bytes:
        return hdlc_encode(
            self.destination.encode(), self.source.encode(), self.control, self.info, self.segmented
        )


def hdlc_encode(
    destination: bytes, source: bytes, control: int, info: bytes = b"", segmented: bool = False
) -> bytes:
    """Build one HDLC frame including both flags."""
    length = 2 + len(destination) + len(source) + 1 + FCS_LEN
    if info:
        length += len(info) + FCS_LEN
    if length > MAX_FRAME:
        raise FrameTooLarge("HDLC frame too long")
    fmt = FORMAT_TYPE_3 | (FORMAT_SEGMENTED if segmented else 0) | length
    header = struct.pack(">H", fmt) + destination + source + bytes((control,))
    hcs = crc16(header)
    body = header + struct.pack("<H", hcs)
    if info:
        body += info
        body += struct.pack("<H", crc16(body))
    return b"\x7e" + body + b"\x7e"


def hdlc_frame_length(format_bytes: bytes) -> int:
    """Two frame-format bytes -> number of bytes between the flags."""
    if len(format_bytes) != 2:
        raise FrameError("frame format must be 2 bytes")
    fmt = (format_bytes[0] << 8) | format_bytes[1]
    if fmt & FORMAT_TYPE_MASK != FORMAT_TYPE_3:
        raise FrameError(f"not an HDLC type 3 frame format: {format_bytes.hex()}")
    length = fmt & FORMAT_LENGTH_MASK
    if length < MIN_FRAME:
        raise FrameError("HDLC frame too short")
    return length


def hdlc_parse(frame: bytes) -> HdlcFrame:
    """Parse one frame (with or without the enclosing flags); check HCS/FCS."""
    buf = bytes(frame)
    if buf[:1] == b"\x7e":
        # Enclosed in flags.  No byte stuffing in DLMS HDLC: the FCS may end in
        # 0x7E, so only the declared length says whether a closing flag follows.
        buf = buf[1:]
        if len(buf) < 2:
            raise FrameError("HDLC frame too short")
        length = hdlc_frame_length(buf[:2])
        if len(buf) == length + 1 and buf[-1] == FLAG:
            buf = buf[:-1]
    if len(buf) < 2:
        raise FrameError("HDLC frame too short")
    length = hdlc_frame_length(buf[:2])
    if length != len(buf):
        raise FrameError(f"HDLC length {length} != {len(buf)}")
    segmented = bool(buf[0] & (FORMAT_SEGMENTED >> 8))
    end = length
    dest, pos = _read_address(buf, 2, end)
    src, pos = _read_address(buf, pos, end)
    if pos >= end:
        raise FrameError("HDLC frame without control field")
    control = buf[pos]
    pos += 1
    destination, source = HdlcAddress.decode(dest), HdlcAddress.decode(src)
    if pos == end - FCS_LEN:
        # No information field: only HCS == FCS.
        if crc16(buf[: end - FCS_LEN]) != struct.unpack_from("<H", buf, end - FCS_LEN)[0]:
            raise FrameError("HDLC FCS error")
        return HdlcFrame(destination, source, control, b"", segmented)
    if pos + FCS_LEN > end - FCS_LEN:
        raise FrameError("HDLC frame truncated")
    if crc16(buf[:pos]) != struct.unpack_from("<H", buf, pos)[0]:
        raise FrameError("HDLC HCS error")
    if crc16(buf[: end - FCS_LEN]) != struct.unpack_from("<H", buf, end - FCS_LEN)[0]:
        raise FrameError("HDLC FCS error")
    info = bytes(buf[pos + FCS_LEN : end - FCS_LEN])
    return HdlcFrame(destination, source, control, info, segmented)


class HdlcStream:
    """HDLC frames out of a byte stream (flag delimited, the length field trusted).

    ``feed`` returns parsed frames, and :class:`FrameError` items for frames that failed
    their checks (HCS/FCS, closing flag); bytes that cannot start a frame, or a frame
    announcing more than ``max_frame`` bytes, are skipped up to the next flag.  What is
    held is less than one frame of ``max_frame`` bytes.
    """

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[HdlcFrame | FrameError]:
        buf = self._buf
        buf += data
        out: list[HdlcFrame | FrameError] = []
        pos = 0
        n = len(buf)
        while True:
            start = buf.find(FLAG, pos)
            if start < 0:
                pos = n
                break
            while start + 1 < n and buf[start + 1] == FLAG:
                start += 1  # consecutive flags
            pos = start
            if n - start < 3:
                break
            fmt = (buf[start + 1] << 8) | buf[start + 2]
            length = fmt & FORMAT_LENGTH_MASK
            if fmt & FORMAT_TYPE_MASK != FORMAT_TYPE_3 or not MIN_FRAME <= length <= self.max_frame:
                pos = start + 1  # a closing flag or garbage: look further
                continue
            end = start + 1 + length  # the closing flag
            if end >= n:
                break
            if buf[end] != FLAG:
                out.append(FrameError("HDLC closing flag missing"))
                pos = start + 1
                continue
            try:
                out.append(hdlc_parse(bytes(buf[start + 1 : end])))
            except FrameError as exc:
                out.append(exc)
            pos = end  # the closing flag may open the next frame
        if pos:
            del buf[:pos]
        return out


def i_control(send_seq: int, recv_seq: int, final: bool = True) -> int:
    return ((recv_seq & 7) << 5) | (PF if final else 0) | ((send_seq & 7) << 1)


def rr_control(recv_seq: int) -> int:
    return ((recv_seq & 7) << 5) | PF | RR


@dataclass(frozen=True, slots=True)
class HdlcParameters:
    """Negotiated link parameters, from the client's point of view."""

    max_info_tx: int = DEFAULT_MAX_INFO
    max_info_rx: int = DEFAULT_MAX_INFO
    window_tx: int = 1
    window_rx: int = 1


def encode_hdlc_parameters(max_info_tx: int, max_info_rx: int, window_tx: int, window_rx: int):
    """The SNRM/UA parameter negotiation field, from the sender's point of view."""

    def param(pid: int, value: int, size: int) -> bytes:
        return bytes((pid, size)) + value.to_bytes(size, "big")

    def size_of(v: int) -> int:
        return 1 if v < 0x100 else 2

    body = (
        param(PARAM_MAX_INFO_TX, max_info_tx, size_of(max_info_tx))
        + param(PARAM_MAX_INFO_RX, max_info_rx, size_of(max_info_rx))
        + param(PARAM_WINDOW_TX, window_tx, 4)
        + param(PARAM_WINDOW_RX, window_rx, 4)
    )
    return HDLC_PARAMETERS_HEAD + bytes((len(body),)) + body


def snrm_info(params: HdlcParameters) -> bytes:
    return encode_hdlc_parameters(
        params.max_info_tx, params.max_info_rx, params.window_tx, params.window_rx
    )


def parse_hdlc_parameters(info: bytes) -> dict[int, int]:
    """SNRM/UA parameter negotiation field -> {parameter id: value} (empty: defaults)."""
    if not info:
        return {}
    if len(info) < 3 or info[:2] != HDLC_PARAMETERS_HEAD:
        raise FrameError("invalid HDLC parameter negotiation field")
    end = 3 + info[2]
    if end > len(info):
        raise FrameError("truncated HDLC parameters")
    values: dict[int, int] = {}
    pos = 3
    while pos < end:
        if pos + 2 > end:
            raise FrameError("truncated HDLC parameter")
        pid, size = info[pos], info[pos + 1]
        pos += 2
        if size > 4 or pos + size > end:
            raise FrameError("invalid HDLC parameter size")
        values[pid] = int.from_bytes(info[pos : pos + size], "big")
        pos += size
    return values


def parse_ua_info(info: bytes, requested: HdlcParameters) -> HdlcParameters:
    """UA information field (server's view) -> parameters for the client."""
    if not info:
        return HdlcParameters(
            min(requested.max_info_tx, DEFAULT_MAX_INFO),
            min(requested.max_info_rx, DEFAULT_MAX_INFO),
            1,
            1,
        )
    values = parse_hdlc_parameters(info)
    # Server's transmit = our receive and vice versa.
    server_tx = values.get(PARAM_MAX_INFO_TX, DEFAULT_MAX_INFO)
    server_rx = values.get(PARAM_MAX_INFO_RX, DEFAULT_MAX_INFO)
    return HdlcParameters(
        max_info_tx=max(MIN_MAX_INFO, min(server_rx, requested.max_info_tx)),
        max_info_rx=max(MIN_MAX_INFO, min(server_tx, requested.max_info_rx)),
        window_tx=max(1, values.get(PARAM_WINDOW_RX, 1)),
        window_rx=max(1, values.get(PARAM_WINDOW_TX, 1)),
    )
