"""The exchange folders on disk: where they are, writing a file atomically, and which files
of incoming/ are complete.

Every path is below `AMI_EXCHANGE_ROOT` (default `var/exchange`); a target's folder name is
checked (`FOLDER_NAME`) so it cannot climb out. Folders are made mode 0o770 and files 0o640
(docs/operations.md "File exchange").
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
SUBFOLDERS = ("outgoing", "incoming", "processed", "rejected")
PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".filepart")


def root() -> Path:
    return Path(getattr(settings, "AMI_EXCHANGE_ROOT", settings.VAR_DIR / "exchange"))


def settle_seconds() -> float:
    """How long a file in incoming/ must be left unchanged before it is read."""
    return float(getattr(settings, "AMI_EXCHANGE_SETTLE_S", 10))


def base(target) -> Path:
    if not FOLDER_NAME.fullmatch(target.folder or ""):
        raise ValueError(f"bad exchange folder name {target.folder!r}")
    return root() / target.folder


def ensure(target) -> Path:
    """The target's folder with its four subfolders (made when missing)."""
    path = base(target)
    for sub in SUBFOLDERS:
        (path / sub).mkdir(mode=0o770, parents=True, exist_ok=True)
    return path


def write_atomic(directory: Path, name: str, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Write `chunks` to `directory/name` so that a reader sees the whole file or none:
    a hidden temporary name in the same folder, fsync, rename over the final name, fsync the
    folder. Returns (size, sha256). On any error the temporary file is removed."""
    final = directory / name
    temporary = directory / f".{name}.{os.getpid()}.tmp"
    digest, size = hashlib.sha256(), 0
    try:
        with open(temporary, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return size, digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_chunks(path: Path, size: int = 1 << 20):
    """The bytes of `path`, `size` at a time."""
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in read_chunks(path):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def complete_files(incoming: Path, now: float | None = None) -> list[Path]:
    """The files of incoming/ that are complete: a plain `.xml` name (not hidden, not a
    `.part`/`.tmp` upload name), a regular file, unchanged for `settle_seconds()`. A sender
    should upload under a partial name and rename; the settle time covers those that don't."""
    now = time.time() if now is None else now
    settle = settle_seconds()
    found = []
    for path in sorted(incoming.iterdir()):
        name = path.name
        if name.startswith(".") or name.lower().endswith(PARTIAL_SUFFIXES):
            continue
        if not name.lower().endswith(".xml") or not path.is_file() or path.is_symlink():
            continue
        if now - path.stat().st_mtime < settle:
            continue
        found.append(path)
    return found


def move_unique(path: Path, directory: Path, stamp: str) -> Path:
    """Move `path` into `directory` as `<stamp>-<name>` (a number added if that exists)."""
    candidate = directory / f"{stamp}-{path.name}"
    number = 1
    while candidate.exists():
        number += 1
        candidate = directory / f"{stamp}-{number}-{path.name}"
    os.replace(path, candidate)
    _fsync_dir(directory)
    return candidate
