"""Who sent a push: the sender record, the directory interface, the replay guard (no Django).

The protocol's push decoder says how a message names its sender (an identity kind of
:mod:`collection.protocols.push`: e.g. a system title in a ciphered header, a logical device
name in a plain body). The directory maps the kind and value to a :class:`Sender`;
:mod:`collection.push.directory` is the one backed by the meter registry,
:class:`StaticDirectory` serves tests and the benchmark.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..protocols.push import LOGICAL_DEVICE, SYSTEM_TITLE

MISSING = object()  # not in the cache: ask the directory asynchronously

# Counters accepted below a sender's highest: a push that arrives after a later one of the
# same meter (separate connections: a meter's retry, a slow path through a balancer) is
# still taken, once.
REPLAY_WINDOW = 64
_ALL_SEEN = (1 << REPLAY_WINDOW) - 1


def key_fingerprint(block_key: bytes, system_title: bytes) -> str:
    """Names a nonce space (block key, sender system title) without revealing the key."""
    return hashlib.sha256(b"ami-push-ic:" + block_key + system_title).hexdigest()[:32]


@dataclass(slots=True)
class Sender:
    """A meter allowed to push, with what the listener needs to check it."""

    meter_id: int
    serial: str
    organisation_id: int | None = None
    system_title: bytes | None = None
    block_key: bytes | None = field(default=None, repr=False)
    auth_key: bytes | None = field(default=None, repr=False)
    accepts_plain: bool = False  # only meters not configured for high security
    floor_ic: int = 0  # highest counter already handled (durable, from PushCounter)
    key_id: str = ""

    def __post_init__(self) -> None:
        if self.block_key and self.system_title and not self.key_id:
            self.key_id = key_fingerprint(self.block_key, self.system_title)

    @property
    def has_keys(self) -> bool:
        return (
            len(self.block_key or b"") == 16
            and len(self.auth_key or b"") == 16
            and len(self.system_title or b"") == 8
        )


class Directory:
    """Sender lookup with a synchronous cache probe, plus the per-meter replay guard."""

    def __init__(self) -> None:
        self._last_ic: dict[tuple[int, str], tuple[int, int]] = {}

    def cached(self, kind: str, ident: bytes):
        """The sender, None (known to be unknown) or MISSING (ask :meth:`lookup`)."""
        return MISSING

    async def lookup(self, kind: str, ident: bytes) -> Sender | None:
        raise NotImplementedError

    def invalidate(self, kind: str, ident: bytes) -> None:
        """Forget a cached sender (its keys failed: they may have changed in the registry)."""

    def accept_counter(self, sender: Sender, ic: int) -> bool:
        """True (and remembered) when ``ic`` was never accepted from this sender and is within
        :data:`REPLAY_WINDOW` of the highest accepted (a sliding window, as IPsec's and
        DTLS's anti-replay windows: each counter at most once, in any order inside the
        window; older ones and every counter at or below the durable floor are refused).

        Call only after the tag verified, or a forger could push the counter up.
        """
        key = (sender.meter_id, sender.key_id)
        state = self._last_ic.get(key)
        if state is None or state[0] < sender.floor_ic:
            # Only the durable floor is known (a restart): everything at or below it is used.
            state = (sender.floor_ic, _ALL_SEEN)
        top, seen = state  # bit n of seen: counter top - n was accepted
        if ic > top:
            shift = ic - top
            seen = ((seen << shift) | 1) & _ALL_SEEN if shift < REPLAY_WINDOW else 1
            self._last_ic[key] = (ic, seen)
            return True
        offset = top - ic
        if offset >= REPLAY_WINDOW or (seen >> offset) & 1:
            return False
        self._last_ic[key] = (top, seen | (1 << offset))
        return True


class StaticDirectory(Directory):
    """A fixed set of senders (tests, benchmark)."""

    def __init__(self, senders: list[Sender] = ()) -> None:
        super().__init__()
        self._by: dict[tuple[str, bytes], Sender] = {}
        for s in senders:
            self.add(s)

    def add(self, sender: Sender, ldn: bytes | None = None) -> None:
        if sender.system_title:
            self._by[(SYSTEM_TITLE, sender.system_title)] = sender
        self._by[(LOGICAL_DEVICE, ldn or sender.serial.encode())] = sender

    def cached(self, kind: str, ident: bytes):
        return self._by.get((kind, ident))

    async def lookup(self, kind: str, ident: bytes) -> Sender | None:
        return self._by.get((kind, ident))
