"""A minimal SMPP 3.4 SMSC for tests: bind_transmitter, submit_sm, enquire_link, unbind.

Runs an asyncio server on a loopback port in a thread. Every accepted message is kept in
`messages` as (system_id, destination, text). `fail_next` makes the next N submit_sm
answers carry an error status (default ESME_RSYSERR, a failure a retry can help).
"""

from __future__ import annotations

import asyncio
import struct
import threading
from dataclasses import dataclass, field

BIND_TRANSMITTER, SUBMIT_SM, UNBIND, ENQUIRE_LINK = 0x02, 0x04, 0x06, 0x15
RESP = 0x80000000
GENERIC_NACK = 0x80000000
ESME_ROK, ESME_RSYSERR, ESME_RINVPASWD = 0x00, 0x08, 0x0E


def _cstring(body: bytes, at: int) -> tuple[bytes, int]:
    end = body.index(b"\0", at)
    return body[at:end], end + 1


def parse_submit_sm(body: bytes) -> tuple[str, str, bytes, int]:
    """(source, destination, short_message, data_coding) of a submit_sm body."""
    _, at = _cstring(body, 0)  # service_type
    at += 2  # source TON, NPI
    source, at = _cstring(body, at)
    at += 2  # destination TON, NPI
    destination, at = _cstring(body, at)
    at += 3  # esm_class, protocol_id, priority_flag
    _, at = _cstring(body, at)  # schedule_delivery_time
    _, at = _cstring(body, at)  # validity_period
    at += 3  # registered_delivery, replace_if_present, data_coding ...
    data_coding = body[at - 1]
    at += 1  # sm_default_msg_id
    length = body[at]
    message = body[at + 1 : at + 1 + length]
    return source.decode(), destination.decode(), message, data_coding


@dataclass
class SmppServer:
    system_id: str = "ami"
    password: str = "secret"
    host: str = "127.0.0.1"
    port: int = 0
    messages: list = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = ESME_RSYSERR
    submits: int = 0

    def start(self) -> SmppServer:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main():
            self._server = await asyncio.start_server(self._client, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(main(), self._loop)
        assert ready.wait(5), "SMPP test server did not start"
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"smpp://{self.system_id}:{self.password}@{self.host}:{self.port}?source=AMI"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        bound_as = None
        try:
            while True:
                head = await reader.readexactly(16)
                length, command, _status, sequence = struct.unpack(">IIII", head)
                body = await reader.readexactly(length - 16)
                status, reply = ESME_ROK, b""
                if command == BIND_TRANSMITTER:
                    system_id, at = _cstring(body, 0)
                    password, _ = _cstring(body, at)
                    if (system_id.decode(), password.decode()) != (self.system_id, self.password):
                        status = ESME_RINVPASWD
                    else:
                        bound_as = system_id.decode()
                    reply = b"test-smsc\0"
                elif command == SUBMIT_SM:
                    self.submits += 1
                    if bound_as is None:
                        status = 0x04  # ESME_RINVBNDSTS
                    elif self.fail_next > 0:
                        self.fail_next -= 1
                        status = self.fail_status
                    else:
                        _, destination, message, coding = parse_submit_sm(body)
                        text = message.decode("utf-16-be" if coding == 8 else "latin-1")
                        self.messages.append((bound_as, destination, text))
                        reply = f"msg-{len(self.messages)}\0".encode()
                elif command in (UNBIND, ENQUIRE_LINK):
                    pass
                else:
                    command, status = GENERIC_NACK & ~RESP, 0x03  # ESME_RINVCMDID
                if status != ESME_ROK and command == SUBMIT_SM:
                    reply = b""  # error responses carry no body
                pdu = struct.pack(">IIII", 16 + len(reply), command | RESP, status, sequence)
                writer.write(pdu + reply)
                await writer.drain()
                if command == UNBIND:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
