"""An SFTP connection to an exchange target's server (asyncssh), used from synchronous code.

`Session(target)` opens one SSH connection and its SFTP channel on a private event loop; each
operation runs to completion (or `AMI_EXCHANGE_SFTP_TIMEOUT_S`) before the next. The server
must present the host key whose SHA-256 fingerprint the target pins (`sftp_host_key`): any
other key is refused before a password or key is sent. The login uses the target's private
key when one is stored, else its password; neither is logged, echoed or put in an error.

Every failure is a `TransferError` with a text meant for an operator; `permanent` says that
trying again cannot help until someone changes the target (a host key that is not the pinned
one, a refused login, an unreadable stored key): exports give up at once on those.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from django.conf import settings
from django.utils import timezone

FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
REMOTE_FOLDERS = ("outgoing", "incoming", "processing", "processed", "rejected")
WRITE_CHUNK = 256 * 1024


class TransferError(Exception):
    """An SFTP exchange that failed, said for an operator (never with a secret in it)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def timeout_seconds() -> float:
    return float(getattr(settings, "AMI_EXCHANGE_SFTP_TIMEOUT_S", 30))


def sftp_problems(target) -> dict[str, str]:
    """What keeps an SFTP target from connecting, by field (empty: nothing)."""
    errors = {}
    if not target.sftp_host:
        errors["sftp_host"] = "An SFTP target needs the server's host name or address."
    if not target.sftp_user:
        errors["sftp_user"] = "An SFTP target needs the user to log in as."
    if not FINGERPRINT.fullmatch(target.sftp_host_key or ""):
        errors["sftp_host_key"] = (
            "Pin the server's host key: its SHA-256 fingerprint as `ssh-keygen -lf` shows it "
            "(SHA256: and 43 characters)."
        )
    if not target.sftp_password and not target.sftp_private_key:
        errors["sftp_password"] = "Give the password or a private key."
    if target.sftp_private_key:
        try:
            asyncssh.import_private_key(str(target.sftp_private_key))
        except (asyncssh.KeyImportError, ValueError):
            errors["sftp_private_key"] = (
                "Not a private key asyncssh can read without a passphrase (OpenSSH or PEM)."
            )
    if any(ch < " " for ch in target.sftp_directory or "") or ".." in (
        target.sftp_directory or ""
    ).split("/"):
        errors["sftp_directory"] = (
            "Use a plain path on the server (no '..', no control characters)."
        )
    return errors


@dataclass
class RemoteFile:
    name: str
    size: int
    mtime: float


class _PinnedHostKey(asyncssh.SSHClient):
    """Accepts only the host key with the pinned fingerprint; remembers the one offered."""

    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint
        self.offered = ""

    def validate_host_public_key(self, host, addr, port, key) -> bool:
        self.offered = key.get_fingerprint("sha256")
        return self.offered == self.fingerprint


class Session:
    """One SFTP connection to `target`'s server, its folders below `sftp_directory`."""

    def __init__(self, target):
        self.target = target
        self.where = f"{target.sftp_host}:{target.sftp_port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection = None
        self._sftp = None

    # --- connection ------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self._loop = asyncio.new_event_loop()
        try:
            self._run(self._open(), "connect")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    async def _open(self):
        target = self.target
        pin = _PinnedHostKey(target.sftp_host_key)
        options = {
            "known_hosts": b"",  # no trusted keys: every key goes to the pin's check
            "config": None,  # never the worker's own ~/.ssh/config, keys or agent
            "agent_path": None,
            "username": target.sftp_user,
            "connect_timeout": timeout_seconds(),
            "login_timeout": timeout_seconds(),
        }
        if target.sftp_private_key:
            try:
                key = asyncssh.import_private_key(str(target.sftp_private_key))
            except (asyncssh.KeyImportError, ValueError):
                raise TransferError(
                    f"the stored private key of target {target.name!r} cannot be read",
                    permanent=True,
                ) from None
            options.update(client_keys=[key], password=None, preferred_auth="publickey")
        else:
            options.update(
                client_keys=None, password=str(target.sftp_password), preferred_auth="password"
            )
        try:
            self._connection, _ = await asyncssh.create_connection(
                lambda: pin, target.sftp_host, target.sftp_port, **options
            )
        except asyncssh.HostKeyNotVerifiable:
            raise TransferError(
                f"SFTP server {self.where} offered host key {pin.offered or '(none)'}, not "
                f"the pinned {target.sftp_host_key}: refused (if the server's key really "
                "changed, check it with its administrator and pin the new fingerprint)",
                permanent=True,
            ) from None
        except asyncssh.PermissionDenied:
            raise TransferError(
                f"SFTP server {self.where} refused the login of user {target.sftp_user!r} "
                "(wrong password or key)",
                permanent=True,
            ) from None
        self._sftp = await self._connection.start_sftp_client()

    def close(self) -> None:
        if self._loop is None:
            return
        if self._connection is not None:
            self._connection.close()
            try:
                self._loop.run_until_complete(
                    asyncio.wait_for(self._connection.wait_closed(), timeout_seconds())
                )
            except (TimeoutError, OSError, asyncssh.Error):
                pass  # closing a dropped connection: nothing is left to say
        self._loop.close()
        self._loop, self._connection, self._sftp = None, None, None

    def _run(self, coroutine, doing: str):
        """Run one operation to its end, every failure a `TransferError` for the operator."""
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coroutine, timeout_seconds()))
        except TransferError:
            raise
        except TimeoutError:
            raise TransferError(
                f"SFTP server {self.where}: no answer within {timeout_seconds():g} s ({doing})"
            ) from None
        except asyncssh.SFTPError as exc:
            raise TransferError(f"SFTP server {self.where}: {doing}: {exc.reason}") from None
        except asyncssh.DisconnectError as exc:
            raise TransferError(
                f"SFTP server {self.where}: connection lost ({doing}): {exc.reason}"
            ) from None
        except (OSError, asyncssh.Error) as exc:
            detail = getattr(exc, "strerror", None) or exc.__class__.__name__
            raise TransferError(f"SFTP server {self.where}: {doing}: {detail}") from None

    # --- paths -----------------------------------------------------------------------------

    def path(self, folder: str, name: str = "") -> str:
        base = self.target.sftp_directory.rstrip("/") or "."
        return posixpath.join(base, folder, name) if name else posixpath.join(base, folder)

    def ensure_folders(self) -> None:
        async def make():
            for folder in REMOTE_FOLDERS:
                await self._sftp.makedirs(self.path(folder), exist_ok=True)

        self._run(make(), "making the exchange folders")

    # --- files -----------------------------------------------------------------------------

    def upload_atomic(self, folder: str, name: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Write `chunks` to `folder/name` on the server so that a receiver sees the whole
        file or none: a hidden `.name.part` first (a dropped connection leaves at most that,
        replaced by the next attempt), its size checked, then renamed over the final name.
        Returns (size, sha256)."""
        temporary, final = self.path(folder, f".{name}.part"), self.path(folder, name)
        digest, size = hashlib.sha256(), 0
        handle = self._run(self._sftp.open(temporary, "wb"), f"opening {temporary}")
        try:
            buffer = bytearray()
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                if len(buffer) >= WRITE_CHUNK:
                    self._run(handle.write(bytes(buffer)), f"writing {temporary}")
                    buffer.clear()
            if buffer:
                self._run(handle.write(bytes(buffer)), f"writing {temporary}")
        finally:
            try:
                self._run(handle.close(), f"closing {temporary}")
            except TransferError:
                pass  # the write's own error (or the size check below) says what went wrong
        written = self._run(self._sftp.getsize(temporary), f"checking {temporary}")
        if written != size:
            raise TransferError(f"SFTP server {self.where}: {temporary} has {written} of "
                                f"{size} bytes")  # fmt: skip
        self._replace(temporary, final)
        return size, digest.hexdigest()

    def _replace(self, source: str, final: str) -> None:
        """Rename over an existing file: POSIX rename where the server has it, else remove
        then rename (a receiver polling in between sees no file, never a partial one)."""

        async def replace():
            try:
                await self._sftp.posix_rename(source, final)
            except asyncssh.SFTPOpUnsupported:
                if await self._sftp.exists(final):
                    await self._sftp.remove(final)
                await self._sftp.rename(source, final)

        self._run(replace(), f"renaming to {final}")

    def listing(self, folder: str) -> list[RemoteFile]:
        """The regular files of `folder`, by name."""

        async def read():
            found = []
            for entry in await self._sftp.readdir(self.path(folder)):
                attrs = entry.attrs
                if attrs.type != asyncssh.FILEXFER_TYPE_REGULAR:
                    continue
                name = (
                    entry.filename if isinstance(entry.filename, str) else entry.filename.decode()
                )
                found.append(RemoteFile(name, attrs.size or 0, float(attrs.mtime or 0)))
            return sorted(found, key=lambda f: f.name)

        return self._run(read(), f"listing {self.path(folder)}")

    def claim(self, name: str) -> str | None:
        """Move `incoming/name` to `processing/<stamp>-name` (the server renames it whole:
        the sender can no longer change it and no other poll takes it). Returns the claimed
        name, or None when the file went away meanwhile."""
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        claimed = f"{stamp}-{name}"
        for number in range(2, 100):
            if not self._run(self._sftp.exists(self.path("processing", claimed)), "claiming"):
                break
            claimed = f"{stamp}.{number}-{name}"
        try:
            self._run(
                self._sftp.rename(self.path("incoming", name), self.path("processing", claimed)),
                f"claiming incoming/{name}",
            )
        except TransferError:
            if not self._run(self._sftp.exists(self.path("incoming", name)), "claiming"):
                return None  # taken away by the sender: nothing to do
            raise
        return claimed

    def download(self, folder: str, name: str, local: Path) -> int:
        """Copy `folder/name` to `local` whole: a hidden `.part` beside it, the size checked
        against the server's, then renamed. Returns the size."""
        remote = self.path(folder, name)
        partial = local.with_name(f".{local.name}.part")
        try:
            expected = self._run(self._sftp.getsize(remote), f"checking {remote}")
            self._run(self._sftp.get(remote, str(partial)), f"downloading {remote}")
            got = partial.stat().st_size
            if got != expected:
                raise TransferError(
                    f"SFTP server {self.where}: {remote} came with {got} of {expected} bytes"
                )
            partial.replace(local)
        finally:
            partial.unlink(missing_ok=True)
        return expected

    def move(self, source_folder: str, name: str, folder: str, new_name: str | None = None):
        self._replace(self.path(source_folder, name), self.path(folder, new_name or name))

    def remove(self, folder: str, name: str) -> None:
        self._run(self._sftp.remove(self.path(folder, name)), f"removing {folder}/{name}")


def settled(entry: RemoteFile, settle: float, partial_suffixes: tuple[str, ...]) -> bool:
    """A file of the server's incoming/ that is complete: a plain `.xml` name (not hidden,
    not an upload name) left unchanged for `settle` seconds (by the server's clock)."""
    name = entry.name.lower()
    if entry.name.startswith(".") or name.endswith(partial_suffixes) or not name.endswith(".xml"):
        return False
    return time.time() - entry.mtime >= settle
