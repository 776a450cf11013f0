"""The base of every websocket consumer: a channel layer that fails closes the socket quietly.

When the channel layer's Redis times out or goes away (`redis.exceptions.TimeoutError` on a
read, a refused connection), the consumer used to die with a traceback from the ASGI server.
Now the socket is closed with 1013 "try again later" (the pages reconnect) and one line is
logged.

Database work of sockets runs on the process's own `AMI_WS_THREADS` threads (`socket_db`),
each holding a pooled connection only while it works. Channels' `database_sync_to_async`
would run it on asgiref's one thread-sensitive thread per process, behind every other
socket's work: 2,000 browsers coming back after a restart queued their sign-in, scope and
first snapshot one at a time, and channels' per-message `close_old_connections` hop through
that same thread put every alarm delivery behind them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync
from channels.auth import AuthMiddleware, get_user
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import close_old_connections
from redis.exceptions import RedisError

from accounts import access_cache, two_factor
from accounts.sessions import access_fingerprint, socket_group

from . import capacity

log = logging.getLogger("amisite.websocket")
TRY_AGAIN_LATER = 1013

# Threads are started on first use, so a process that never serves a socket has none.
_threads = ThreadPoolExecutor(capacity.ws_threads(), thread_name_prefix="ws-db")
# The status sockets' periodic snapshots (a user's permissions, scope and figures each)
# have a thread of their own: 2,000 operators' home pages ticking must not queue the
# sign-in of the next socket or an alarm socket's scope behind them.
_status_thread = ThreadPoolExecutor(capacity.STATUS_CONNECTIONS, thread_name_prefix="ws-status")


class _SocketWork(SyncToAsync):
    """channels.db.DatabaseSyncToAsync, except that it closes with Django's own function:
    channels' test communicator patches out the one channels calls, which on threads of our
    own would leave their connections open past the test."""

    def thread_handler(self, loop, *args, **kwargs):
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            close_old_connections()  # with the pool: the connection goes back to it


def socket_db(func):
    """`func` as a coroutine run on the websocket threads, its connection back in the pool
    afterwards (Django's connections are per thread; the pool bounds them per process)."""
    return _SocketWork(func, thread_sensitive=False, executor=_threads)


def status_db(func):
    """`socket_db` on the status snapshots' own thread."""
    return _SocketWork(func, thread_sensitive=False, executor=_status_thread)


class SocketAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware (session -> user), run on the websocket threads, which also
    takes the access fingerprint the socket is watched against (`JsonConsumer`)."""

    async def resolve_scope(self, scope):
        scope["user"]._wrapped, scope["ami_access"] = await socket_db(_sign_in)(scope)


def _sign_in(scope) -> tuple:
    """(user, (user id, access fingerprint) or None). The fingerprint is taken first: a
    change between the two lookups then differs from it, and the first re-check closes the
    socket; taken after authorising, it could include a change the socket never saw."""
    session = scope["session"]
    access = None
    if SESSION_KEY in session:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        access = (user_id, access_fingerprint(user_id, session.session_key))
    user = get_user.func(scope)
    if user.is_authenticated and not two_factor.session_verified(session, user):
        return AnonymousUser(), None  # signed in with the password, not yet the code
    return user, access


def socket_auth(inner):
    """`channels.auth.AuthMiddlewareStack` with the sign-in lookup on the websocket threads."""
    return CookieMiddleware(SessionMiddleware(SocketAuthMiddleware(inner)))


# The sockets of one browser session (a page's alarm and status sockets open together, so
# their periodic re-checks come due together) share one fingerprint taken within this many
# seconds: 2,000 sockets of 1,000 operators cost 1,000 re-checks a minute, not 2,000.
SHARED_RECHECK_SECONDS = 5.0
_recent: dict[tuple, tuple[float, asyncio.Future]] = {}


async def shared_fingerprint(user_id, session_key):
    """`access_fingerprint`, shared by the re-checks of one session in this process that
    come due within SHARED_RECHECK_SECONDS of each other (one running query serves all)."""
    key, now = (user_id, session_key), time.monotonic()
    # Never more than a tenth of the re-check interval: a shared answer is that much older.
    window = min(SHARED_RECHECK_SECONDS, settings.AMI_WS_RECHECK_SECONDS / 10)
    got = _recent.get(key)
    if got is None or now - got[0] >= window or not _usable(got[1]):
        if len(_recent) > 1000:  # forget the sessions not seen lately
            for old in [k for k, (t, _) in _recent.items() if now - t >= window]:
                del _recent[old]
        got = _recent[key] = (now, asyncio.ensure_future(socket_db(access_fingerprint)(*key)))
    return await asyncio.shield(got[1])


def _usable(future: asyncio.Future) -> bool:
    """Of this event loop, and not failed (a failure is not shared beyond its moment)."""
    if future.get_loop() is not asyncio.get_running_loop():
        return False
    return not future.done() or (not future.cancelled() and future.exception() is None)


def recheck_delay(user_id, session_key, now: float | None = None) -> float:
    """Seconds to the session's next re-check: its own instant in every
    AMI_WS_RECHECK_SECONDS, from a hash of the session (never longer than that apart).

    Each socket waiting the full interval from its connection made browsers that came back
    together (after a restart: 1,000 sessions within 20 s) re-check together every minute,
    a burst that stalled every page for ~10 s (bench/web_load.py); the sockets of one
    session still come due together, so they share one fingerprint."""
    interval = settings.AMI_WS_RECHECK_SECONDS
    seed = f"{user_id}:{session_key or ''}".encode()
    phase = zlib.crc32(seed) / 2**32 * interval
    now = time.time() if now is None else now
    return interval - ((now - phase) % interval)


ACCESS_CHANGED = 4401  # close code: sign in again / reconnect to be authorised afresh


class JsonConsumer(AsyncJsonWebsocketConsumer):
    """AsyncJsonWebsocketConsumer that survives its channel layer failing, and closes when
    its user signs out, is deactivated or changes roles (accounts/sessions.py): on a push
    to the user's group, and at least every AMI_WS_RECHECK_SECONDS."""

    async def accept(self, subprotocol=None, headers=None):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await super().accept(subprotocol, headers)
        self._ami_user_id = user.pk
        session = self.scope.get("session")
        self._ami_session_key = getattr(session, "session_key", None)
        # The baseline is from before the user was authorised (`_sign_in`), and the socket
        # hears pushes before the browser learns it is open: nothing can slip in between.
        signed_in = self.scope.get("ami_access")
        if signed_in is not None and signed_in[0] == user.pk:
            self._ami_access = signed_in[1]
        else:
            self._ami_access = await self._access()
        await self.channel_layer.group_add(socket_group(user.pk), self.channel_name)
        await super().accept(subprotocol, headers)
        self._ami_watch = asyncio.ensure_future(self._watch_access())

    async def _access(self, shared: bool = False):
        if shared:
            return await shared_fingerprint(self._ami_user_id, self._ami_session_key)
        return await socket_db(access_fingerprint)(self._ami_user_id, self._ami_session_key)

    async def _watch_access(self):
        while True:
            await asyncio.sleep(recheck_delay(self._ami_user_id, self._ami_session_key))
            if await self._recheck(shared=True):
                return

    async def _recheck(self, shared: bool = False) -> bool:
        """Close the socket if its user's access changed; True when closed. The periodic
        re-check may share a fingerprint taken moments ago for another socket of the same
        session; a push (`access_changed`) always takes a new one."""
        now = await self._access(shared)
        if now is not None and now == self._ami_access:
            return False
        # Perhaps a change made behind the application's back (SQL): pages must not go on
        # with the permissions and scope cached before it, nor the reconnecting socket.
        await socket_db(access_cache.bump)()
        await self.close(code=ACCESS_CHANGED)
        return True

    async def dispatch(self, message):
        """Channels' dispatch without its `close_old_connections` before every message: that
        hop goes through asgiref's one thread per process (every alarm to every socket
        waited its turn there), and no connection lives on the event loop's side here:
        `socket_db` closes its own."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def access_changed(self, event):
        if await self._recheck():
            watch = getattr(self, "_ami_watch", None)
            if watch is not None:
                watch.cancel()

    async def websocket_disconnect(self, message):
        watch = getattr(self, "_ami_watch", None)
        if watch is not None:
            watch.cancel()
        if hasattr(self, "_ami_user_id"):
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(
                    socket_group(self._ami_user_id), self.channel_name
                )
        await super().websocket_disconnect(message)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except RedisError as exc:
            log.warning(
                "websocket %s closed: channel layer unavailable (%s: %s)",
                scope.get("path", "?"),
                type(exc).__name__,
                exc,
            )
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
