"""A minimal blocking gurux-dlms client loop over a plain socket (test helper)."""

from __future__ import annotations

import socket

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient


class GuruxSession:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client: int = 16,
        server: int = 1,
        hdlc: bool = False,
        physical: int = 17,
        auth: Authentication = Authentication.NONE,
        password: bytes | None = None,
        keys: tuple[bytes, bytes, bytes] | None = None,  # (system title, block, auth)
        invocation_counter: int = 1,
    ) -> None:
        if hdlc:
            size = 4 if server > 0x7F else 0
            server = GXDLMSClient.getServerAddress(server, physical, size)
        self.hdlc = hdlc
        cls = GXDLMSSecureClient if keys is not None else GXDLMSClient
        self.client = cls(
            True,
            client,
            server,
            auth,
            password,
            InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER,
        )
        if keys is not None:
            c = self.client.settings.cipher
            c.security = Security.AUTHENTICATION_ENCRYPTION
            c.systemTitle = bytearray(keys[0])
            c.blockCipherKey = bytearray(keys[1])
            c.authenticationKey = bytearray(keys[2])
            c.invocationCounter = invocation_counter
        self.sock = socket.create_connection((host, port), timeout=5)

    def _exchange(self, data, reply: GXReplyData) -> None:
        if data:
            self.sock.sendall(bytes(data))
        notify = GXReplyData()
        rd = GXByteBuffer()
        while not self.client.getData(rd, reply, notify):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed by meter")
            rd.set(chunk)

    def request(self, frames) -> GXReplyData:
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        reply = GXReplyData()
        for frame in frames:
            reply.clear()
            self._exchange(frame, reply)
            while reply.isMoreData():
                self._exchange(self.client.receiverReady(reply), reply)
        return reply

    def open(self) -> None:
        if self.hdlc:
            reply = self.request(self.client.snrmRequest())
            self.client.parseUAResponse(reply.data)
        reply = self.request(self.client.aarqRequest())
        self.client.parseAareResponse(reply.data)
        if self.client.authentication > Authentication.LOW:
            reply = self.request(self.client.getApplicationAssociationRequest())
            self.client.parseApplicationAssociationResponse(reply.data)

    def read(self, obj, attribute: int):
        reply = self.request(self.client.read(obj, attribute))
        return self.client.updateValue(obj, attribute, reply.value)

    def write(self, obj, attribute: int) -> GXReplyData:
        return self.request(self.client.write(obj, attribute))

    def rows_by_range(self, pg, start, end):
        reply = self.request(self.client.readRowsByRange(pg, start, end))
        return self.client.updateValue(pg, 2, reply.value)

    def close(self) -> None:
        try:
            self.request(self.client.releaseRequest())
            if self.hdlc:
                self.request(self.client.disconnectRequest())
        finally:
            self.sock.close()
