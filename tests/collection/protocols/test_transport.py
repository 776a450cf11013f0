import asyncio
import time

import pytest

from collection.protocols.errors import ConnectionFailed, MeterTimeout
from collection.protocols.transport import LineLimiter, line_key, open_transport

pytestmark = pytest.mark.timeout(30)


async def _server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port


def _deadline(seconds):
    return asyncio.get_running_loop().time() + seconds


@pytest.mark.parametrize("scheme", ["tcp", "socket"])
def test_echo_timeout_and_close(scheme):
    async def main():
        async def handler(reader, writer):
            data = await reader.readexactly(3)
            writer.write(data)
            await writer.drain()
            await reader.readexactly(1)  # "late": never answer this one
            writer.write(b"x")
            await writer.drain()
            writer.close()

        server, port = await _server(handler)
        async with server:
            t = open_transport(f"{scheme}://127.0.0.1:{port}")
            await t.open(2)
            await t.write(b"abc")
            assert await t.read_exactly(3, _deadline(2)) == b"abc"
            start = time.monotonic()
            with pytest.raises(MeterTimeout):
                await t.read_exactly(1, _deadline(0.3))
            assert time.monotonic() - start < 1.5
            await t.write(b"!")
            assert await t.read_exactly(1, _deadline(2)) == b"x"
            with pytest.raises((ConnectionFailed, MeterTimeout)):
                await t.read_exactly(5, _deadline(1))
            await t.close()

    asyncio.run(main())


def test_tcp_connect_refused():
    async def main():
        server, port = await _server(lambda r, w: None)
        server.close()
        await server.wait_closed()
        t = open_transport(f"tcp://127.0.0.1:{port}")
        with pytest.raises(ConnectionFailed):
            await t.open(2)

    asyncio.run(main())


def test_tcp_peer_closes():
    async def main():
        async def handler(reader, writer):
            writer.write(b"ab")
            await writer.drain()
            writer.close()

        server, port = await _server(handler)
        async with server:
            t = open_transport(f"tcp://127.0.0.1:{port}")
            await t.open(2)
            with pytest.raises(ConnectionFailed):
                await t.read_exactly(4, _deadline(2))
            await t.close()

    asyncio.run(main())


def test_serial_loop_url():
    async def main():
        t = open_transport("loop://")
        await t.open(2)
        await t.write(b"\x7e\x01")
        assert await t.read_exactly(2, _deadline(2)) == b"\x7e\x01"
        with pytest.raises(MeterTimeout):
            await t.read_exactly(1, _deadline(0.2))
        await t.close()

    asyncio.run(main())


def test_serial_bad_device():
    async def main():
        t = open_transport("/dev/does-not-exist-meter")
        with pytest.raises(ConnectionFailed):
            await t.open(2)

    asyncio.run(main())


def test_line_limiter():
    async def main():
        limiter = LineLimiter(max_sessions=2)
        active: dict[str, int] = {}
        peak = {"global": 0}
        total = {"n": 0}

        async def session(line):
            async with limiter.session(line):
                active[line] = active.get(line, 0) + 1
                total["n"] += 1
                assert active[line] == 1
                peak["global"] = max(peak["global"], sum(active.values()))
                await asyncio.sleep(0.01)
                active[line] -= 1
                total["n"] -= 1

        await asyncio.gather(*(session(f"line{i % 3}") for i in range(12)))
        assert peak["global"] <= 2
        assert limiter.busy_lines() == []

        async with limiter.session("x"):
            with pytest.raises(MeterTimeout):
                async with limiter.session("x", timeout=0.05):
                    pass
        assert limiter.busy_lines() == []

    asyncio.run(main())


def test_line_key():
    assert line_key("/dev/ttyUSB0?baudrate=300") == "/dev/ttyUSB0"
