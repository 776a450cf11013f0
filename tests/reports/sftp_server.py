"""A real SFTP server on loopback for the exchange tests: asyncssh's own server side, serving
a temporary folder (chrooted), in a thread with its own event loop; bounded (it stops itself
after `lifetime` seconds) and stopped by the fixture.

It can drop the connection on purpose: `drop_writes` / `drop_reads` count down the next file
writes or reads after which the server aborts the connection (the request itself done: the
bytes reached the disk, the client never heard); `drop_renames` aborts it instead of the next
rename (the file stays where it was).
"""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import asyncssh

PORTS = range(32000, 33000)  # this helper's share of loopback ports


class _Login(asyncssh.SSHServer):
    def __init__(self, server: SftpServer):
        self.server = server

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self.server.logins.append(username)
        return username == self.server.user and password == self.server.password

    def public_key_auth_supported(self) -> bool:
        return self.server.client_key is not None

    def validate_public_key(self, username: str, key) -> bool:
        self.server.logins.append(username)
        wanted = self.server.client_key
        return username == self.server.user and key.public_data == wanted.public_data


class _Files(asyncssh.SFTPServer):
    """The chrooted folder, with the connection drops the tests ask for."""

    def __init__(self, chan, server: SftpServer):
        super().__init__(chan, chroot=str(server.root))
        self.server = server

    def _maybe_drop(self, counter: str) -> None:
        left = getattr(self.server, counter)
        if left > 0:
            setattr(self.server, counter, left - 1)
            if left == 1:
                self.server.drops += 1
                self.channel.get_connection().abort()

    def write(self, file_obj, offset, data):
        result = super().write(file_obj, offset, data)
        self._maybe_drop("drop_writes")
        return result

    def read(self, file_obj, offset, size):
        result = super().read(file_obj, offset, size)
        self._maybe_drop("drop_reads")
        return result

    def posix_rename(self, oldpath, newpath):
        if self.server.drop_renames > 0:  # gone before the rename reached the disk
            self._maybe_drop("drop_renames")
            return None
        return super().posix_rename(oldpath, newpath)


class SftpServer:
    def __init__(self, root: Path, *, user="ami", password="s3cret-Passw0rd", client_key=None,
                 lifetime: float = 120.0):  # fmt: skip
        self.root, self.user, self.password = root, user, password
        self.client_key = client_key
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.fingerprint = self.host_key.get_fingerprint("sha256")
        self.lifetime = lifetime
        self.logins: list[str] = []
        self.drop_writes = self.drop_reads = self.drop_renames = 0
        self.drops = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._acceptor = None

    async def _listen(self):
        ports = random.sample(PORTS, 40)
        for port in ports:
            try:
                acceptor = await asyncssh.listen(
                    "127.0.0.1", port, server_host_keys=[self.host_key],
                    server_factory=lambda: _Login(self),
                    sftp_factory=lambda chan: _Files(chan, self), allow_scp=False,
                )  # fmt: skip
            except OSError:
                continue  # taken: try another of the range
            self._loop.call_later(self.lifetime, acceptor.close)  # never outlives a test
            return acceptor, port
        raise RuntimeError("no free port for the SFTP server")

    def start(self) -> SftpServer:
        for sub in ("outgoing", "incoming"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._acceptor, self.port = future.result(timeout=10)
        return self

    def stop(self) -> None:
        async def close():
            self._acceptor.close()
            await self._acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
