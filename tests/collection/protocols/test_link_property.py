"""Property tests: the stream-level frame readers only raise typed protocol errors."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from collection.protocols.dlms import framing as fr
from collection.protocols.dlms.link import HdlcLink, WrapperLink
from collection.protocols.errors import MeterTimeout, ProtocolError
from collection.protocols.transport import Transport


class MemoryTransport(Transport):
    def __init__(self, data: bytes):
        self.data = bytearray(data)
        self.sent = []

    async def open(self, timeout):
        pass

    async def close(self):
        pass

    async def write(self, data):
        self.sent.append(bytes(data))

    async def read_exactly(self, n, deadline):
        if len(self.data) < n:
            raise MeterTimeout("no more data")
        out = bytes(self.data[:n])
        del self.data[:n]
        return out


def _hdlc(data):
    link = HdlcLink(MemoryTransport(data), 16, 1, 17, 0.1, 1, 128)
    link.connected = True
    return link


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_hdlc_request_on_garbage(data):
    async def main():
        try:
            await _hdlc(data).request(b"\xc0\x01\xc1")
        except ProtocolError:
            pass

    asyncio.run(main())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_hdlc_valid_frame_inside_garbage(before, after):
    client = fr.encode_client_address(16)
    server = fr.encode_server_address(1, 17)
    good = fr.hdlc_encode(
        client, server, fr.i_control(0, 1), fr.LLC_RESPONSE + b"\xc4\x01\xc1\x00\x11\x05"
    )

    async def main():
        link = _hdlc(before.replace(b"\x7e", b"") + good + after)
        try:
            apdu = await link.request(b"\xc0\x01\xc1")
        except ProtocolError:
            return
        assert apdu == b"\xc4\x01\xc1\x00\x11\x05"

    asyncio.run(main())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_wrapper_receive_on_garbage(data):
    async def main():
        link = WrapperLink(MemoryTransport(data), 16, 1, 0.1)
        try:
            await link.request(b"\xc0\x01\xc1")
        except ProtocolError:
            pass

    asyncio.run(main())


def test_hdlc_segmented_reply_reassembled():
    client = fr.encode_client_address(16)
    server = fr.encode_server_address(1, 17)
    payload = fr.LLC_RESPONSE + bytes(range(200))
    first = fr.hdlc_encode(client, server, fr.i_control(0, 1), payload[:128], segmented=True)
    second = fr.hdlc_encode(client, server, fr.i_control(1, 1), payload[128:])

    async def main():
        t = MemoryTransport(first + second)
        link = HdlcLink(t, 16, 1, 17, 0.1, 1, 128)
        link.connected = True
        assert await link.request(b"\xc0") == bytes(range(200))
        # an RR asking for the next segment was sent after the first segment
        rr = fr.hdlc_parse(t.sent[1])
        assert rr.is_rr and rr.recv_seq == 1

    asyncio.run(main())


def test_hdlc_retransmits_on_timeout():
    async def main():
        t = MemoryTransport(b"")
        link = HdlcLink(t, 16, 1, 17, 0.05, 2, 128)
        link.connected = True
        try:
            await link.request(b"\xc0")
        except MeterTimeout:
            pass
        assert len(t.sent) == 3 and len(set(t.sent)) == 1

    asyncio.run(main())


def test_hdlc_link_reads_frame_whose_fcs_ends_in_flag_byte():
    client = fr.encode_client_address(16)
    server = fr.encode_server_address(1, 17)
    for i in range(5000):
        apdu = b"\xc4\x01\xc1\x00\x09\x02" + i.to_bytes(2, "big")
        f = fr.hdlc_encode(client, server, fr.i_control(0, 1), fr.LLC_RESPONSE + apdu)
        if f[-2] == 0x7E:
            break

    async def main():
        link = _hdlc(f)
        assert await link.request(b"\xc0") == apdu

    asyncio.run(main())
