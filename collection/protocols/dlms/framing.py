"""WRAPPER (IEC 62056-47) and HDLC (IEC 62056-46) framing, sans-IO.

``parse_*`` functions accept arbitrary bytes and raise only
:class:`FrameError` (or a subclass) on garbage.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

from ..errors import FrameError

# ---------------------------------------------------------------- WRAPPER

WRAPPER_VERSION = 1
WRAPPER_HEADER = struct.Struct(">HHHH")


def wrapper_encode(source: int, destination: int, apdu: bytes) -> bytes:
    if len(apdu) > 0xFFFF:
        raise ValueError("APDU too long for WRAPPER")
    return WRAPPER_HEADER.pack(WRAPPER_VERSION, source, destination, len(apdu)) + apdu


def wrapper_parse_header(header: bytes) -> tuple[int, int, int]:
    """8 header bytes -> (source wport, destination wport, payload length)."""
    if len(header) != 8:
        raise FrameError("WRAPPER header must be 8 bytes")
    version, src, dst, length = WRAPPER_HEADER.unpack(header)
    if version != WRAPPER_VERSION:
        raise FrameError(f"WRAPPER version {version} != 1")
    return src, dst, length


def wrapper_parse(frame: bytes) -> tuple[int, int, bytes]:
    """Whole WRAPPER frame -> (source, destination, apdu)."""
    src, dst, length = wrapper_parse_header(bytes(frame[:8]))
    if len(frame) != 8 + length:
        raise FrameError("WRAPPER length mismatch")
    return src, dst, bytes(frame[8:])


# ---------------------------------------------------------------- HDLC

FLAG = 0x7E
SNRM = 0x93
DISC = 0x53
UA = 0x73
DM = 0x1F
FRMR = 0x97
UI = 0x13
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"


_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16(data: bytes) -> int:
    """CRC-16/X-25 (HDLC FCS): init 0xFFFF, reflected 0x1021, xorout 0xFFFF.

    Computed in C by ``binascii.crc_hqx`` (the non-reflected CCITT CRC) on
    bit-reversed bytes; reversing the result gives the reflected CRC.
    """
    crc = binascii.crc_hqx(bytes(data).translate(_REVERSE), 0xFFFF)
    return ((_REVERSE[crc & 0xFF] << 8) | _REVERSE[crc >> 8]) ^ 0xFFFF


def encode_client_address(address: int) -> bytes:
    if not 0 <= address <= 0x7F:
        raise ValueError("HDLC client address must be 0..127")
    return bytes(((address << 1) | 1,))


def encode_server_address(logical: int, physical: int | None = None) -> bytes:
    """Server HDLC address: 1 byte (logical only), 2 or 4 bytes (upper+lower)."""
    if physical is None:
        if 0 <= logical <= 0x7F:
            return bytes(((logical << 1) | 1,))
        physical = 0
    if 0 <= logical <= 0x7F and 0 <= physical <= 0x7F:
        return bytes((logical << 1, (physical << 1) | 1))
    if not (0 <= logical <= 0x3FFF and 0 <= physical <= 0x3FFF):
        raise ValueError("HDLC server address parts must be 0..16383")
    return bytes(
        (
            ((logical >> 7) & 0x7F) << 1,
            (logical & 0x7F) << 1,
            ((physical >> 7) & 0x7F) << 1,
            ((physical & 0x7F) << 1) | 1,
        )
    )


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
    destination: bytes
    source: bytes
    control: int
    info: bytes
    segmented: bool

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
        return self.control & 0x0F == 0x01

    @property
    def unnumbered(self) -> int:
        return self.control | 0x10  # normalised with the P/F bit set


def hdlc_encode(
    destination: bytes, source: bytes, control: int, info: bytes = b"", segmented: bool = False
) -> bytes:
    """Build one HDLC frame including both flags."""
    length = 2 + len(destination) + len(source) + 1 + 2 + (len(info) + 2 if info else 0)
    if length > 0x7FF:
        raise ValueError("HDLC frame too long")
    fmt = 0xA000 | (0x0800 if segmented else 0) | length
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
    if format_bytes[0] & 0xF0 != 0xA0:
        raise FrameError(f"not an HDLC type 3 frame format: {format_bytes.hex()}")
    length = ((format_bytes[0] & 0x07) << 8) | format_bytes[1]
    if length < 7:
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
    segmented = bool(buf[0] & 0x08)
    end = length
    dest, pos = _read_address(buf, 2, end)
    src, pos = _read_address(buf, pos, end)
    if pos >= end:
        raise FrameError("HDLC frame without control field")
    control = buf[pos]
    pos += 1
    if pos == end - 2:
        # No information field: only HCS == FCS.
        if crc16(buf[: end - 2]) != struct.unpack_from("<H", buf, end - 2)[0]:
            raise FrameError("HDLC FCS error")
        return HdlcFrame(dest, src, control, b"", segmented)
    if pos + 2 > end - 2:
        raise FrameError("HDLC frame truncated")
    if crc16(buf[:pos]) != struct.unpack_from("<H", buf, pos)[0]:
        raise FrameError("HDLC HCS error")
    if crc16(buf[: end - 2]) != struct.unpack_from("<H", buf, end - 2)[0]:
        raise FrameError("HDLC FCS error")
    return HdlcFrame(dest, src, control, bytes(buf[pos + 2 : end - 2]), segmented)


def i_control(send_seq: int, recv_seq: int, final: bool = True) -> int:
    return ((recv_seq & 7) << 5) | (0x10 if final else 0) | ((send_seq & 7) << 1)


def rr_control(recv_seq: int) -> int:
    return ((recv_seq & 7) << 5) | 0x10 | 0x01


@dataclass(frozen=True, slots=True)
class HdlcParameters:
    """Negotiated link parameters, from the client's point of view."""

    max_info_tx: int = 128
    max_info_rx: int = 128
    window_tx: int = 1
    window_rx: int = 1


def snrm_info(params: HdlcParameters) -> bytes:
    def param(pid: int, value: int, size: int) -> bytes:
        return bytes((pid, size)) + value.to_bytes(size, "big")

    def size_of(v: int) -> int:
        return 1 if v < 0x100 else 2

    body = (
        param(5, params.max_info_tx, size_of(params.max_info_tx))
        + param(6, params.max_info_rx, size_of(params.max_info_rx))
        + param(7, params.window_tx, 4)
        + param(8, params.window_rx, 4)
    )
    return b"\x81\x80" + bytes((len(body),)) + body


def parse_ua_info(info: bytes, requested: HdlcParameters) -> HdlcParameters:
    """UA information field (server's view) -> parameters for the client."""
    if not info:
        return HdlcParameters(
            min(requested.max_info_tx, 128), min(requested.max_info_rx, 128), 1, 1
        )
    if len(info) < 3 or info[0] != 0x81 or info[1] != 0x80:
        raise FrameError("invalid UA parameter negotiation field")
    end = 3 + info[2]
    if end > len(info):
        raise FrameError("truncated UA parameters")
    values: dict[int, int] = {}
    pos = 3
    while pos < end:
        if pos + 2 > end:
            raise FrameError("truncated UA parameter")
        pid, size = info[pos], info[pos + 1]
        pos += 2
        if size > 4 or pos + size > end:
            raise FrameError("invalid UA parameter size")
        values[pid] = int.from_bytes(info[pos : pos + size], "big")
        pos += size
    # Server's transmit = our receive and vice versa.
    server_tx = values.get(5, 128)
    server_rx = values.get(6, 128)
    return HdlcParameters(
        max_info_tx=max(16, min(server_rx, requested.max_info_tx)),
        max_info_rx=max(16, min(server_tx, requested.max_info_rx)),
        window_tx=max(1, values.get(8, 1)),
        window_rx=max(1, values.get(7, 1)),
    )
