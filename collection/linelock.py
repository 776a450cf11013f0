"""One session at a time per shared line across processes: a lease in Redis per line slot.

Within one batch the reader's own gate (``reader.gather_gated``) already lets a line's
``max_sessions`` sessions at once; this holds the same limit between processes -- two
workers whose jobs share a line, an on-demand read or a command batch while a job reads
it. Each session takes one of the line's slots (``<prefix><line>#<slot>``, a key set with
``NX`` and a time to live, renewed while the session runs), so:

* a process killed while it holds a slot frees it when the lease runs out (``ttl_s``, 20 s
  by default; a live holder renews it every third of that);
* waiting is bounded (``wait_s``): a line still busy then is :class:`LineBusy` for that
  meter, a clear error that counts neither against the meter nor against the line;
* waiters take turns: the first process that finds the line full leaves its token in the
  line's ``want`` key (a short lease it renews while it waits), and whoever else comes,
  the holder's next session included, lets it go first. So a job reading a bus meter after
  meter cannot keep an on-demand read out for the length of the whole job.

Pure asyncio and redis-py; the Redis URL comes from the caller (settings ``REDIS_URL``).
Without a Redis URL there is nothing to share between processes, and :func:`nothing_held`
stands in (the in-process gate still holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .protocols.errors import ProtocolError

log = logging.getLogger(__name__)

PREFIX = "ami:line:"

# KEYS: want, slot 1..n; ARGV: token, lease ms, want ms. Returns the slot taken (1..n) or 0.
_TAKE = """
local want = redis.call('GET', KEYS[1])
if want and want ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    if want then redis.call('DEL', KEYS[1]) end
    return i - 1
  end
end
if want then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
end
return 0
"""
# KEYS: slot, ARGV: token, lease ms (0: release). 1 when the slot was still ours.
_KEEP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


class LineBusy(ProtocolError):
    """The meter was not tried: its shared line stayed busy (another process's sessions)
    longer than the wait allowed. Not the meter's fault, not the line's."""

    retryable = False


class LineLocks:
    """Leases on shared lines in one Redis, for the sessions of one event loop."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 20.0,
        wait_s: float = 300.0,
        poll_s: float = 0.2,
        prefix: str = PREFIX,
    ) -> None:
        if not 1 <= ttl_s <= 3600 or wait_s < 0 or not 0.01 <= poll_s <= ttl_s:
            raise ValueError("line locks: 1 <= ttl_s <= 3600, wait_s >= 0, poll_s <= ttl_s")
        self.client = aioredis.Redis.from_url(url)
        self.ttl_ms, self.wait_s, self.poll_s = int(ttl_s * 1000), wait_s, poll_s
        self.want_ms = int(max(3 * poll_s, 1.0) * 1000)
        self.prefix = prefix
        self._take = self.client.register_script(_TAKE)
        self._keep = self.client.register_script(_KEEP)

    async def close(self) -> None:
        await self.client.aclose()

    def _keys(self, line: str, slots: int) -> list[str]:
        base = f"{self.prefix}{line}"
        return [f"{base}#want", *(f"{base}#{i}" for i in range(1, max(1, slots) + 1))]

    @contextlib.asynccontextmanager
    async def hold(self, line: str, slots: int = 1) -> AsyncIterator[None]:
        """Hold one of the line's `slots` for the block (LineBusy after ``wait_s``)."""
        keys = self._keys(line, slots)
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_s
        started = time.monotonic()
        try:
            while not (slot := await self._take(keys, [token, self.ttl_ms, self.want_ms])):
                if time.monotonic() >= deadline:
                    with contextlib.suppress(RedisError):  # give up our turn, if we had it
                        await self._keep([keys[0]], [token, 0])
                    raise LineBusy(
                        f"line {line} busy: another process held it for more than {self.wait_s:g} s"
                    )
                await asyncio.sleep(self.poll_s)
        except RedisError as exc:
            # Redis gone: the in-process gate still holds; say so once per session.
            log.warning("line lock for %s not taken (%s): in-process turns only", line, exc)
            yield
            return
        waited = time.monotonic() - started
        if waited > 1:
            log.info("line %s: waited %.1f s for another process's session", line, waited)
        key = keys[slot]
        renew = asyncio.get_running_loop().create_task(self._renew(key, token))
        try:
            yield
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            with contextlib.suppress(RedisError):
                await self._keep([key], [token, 0])

    async def _renew(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                if not await self._keep([key], [token, self.ttl_ms]):
                    log.warning("line lease %s was lost (expired while held)", key)
                    return
            except RedisError as exc:
                log.warning("line lease %s not renewed: %s", key, exc)


@contextlib.asynccontextmanager
async def nothing_held(line: str, slots: int = 1) -> AsyncIterator[None]:
    """No Redis: nothing to share between processes."""
    yield


__all__ = ["LineBusy", "LineLocks", "nothing_held"]
