"""The registry-backed sender directory and the rejection recorder (Django side).

Identification (docs/architecture.md, "Push listener"): the protocol's push decoder reads
who a message says it is from; this module only matches that identity (a kind of
:mod:`collection.protocols.push`) against the registry:

* ``SYSTEM_TITLE`` (a protected push, e.g. the title of a ciphered header): the meter's own
  (server) system title, matched against its endpoint's ``system_title`` (hex, 8 bytes,
  case-insensitive). That field is the meter's title: the head-end's own (client) title is
  ``collection.targets.client_system_title()`` and never stored per meter.
* ``LOGICAL_DEVICE`` (a plain push): the logical device name, matched against
  ``Meter.serial`` as is, or without its first three characters (the manufacturer's id that
  meters and our simulator put in front). Plain pushes are accepted only from meters whose
  security is not "high".
* Link addresses (e.g. a logical device port, 1 on most meters) and the peer address (NAT,
  dynamic cellular addresses) identify no meter; the peer is only logged.

Lookups run in a thread (``sync_to_async``) and are cached: found senders for
``positive_ttl`` seconds, unknown identities for ``negative_ttl`` seconds (bounded), so an
edit in the registry takes effect within minutes and a flood of random titles costs one
query per title per ``negative_ttl``. ``preload()`` fills the cache with every meter that
has a system title in one query at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import time

from asgiref.sync import sync_to_async

from meters.choices import Security
from meters.models import Meter

from .models import PushCounter, PushRejection
from .senders import LOGICAL_DEVICE, MISSING, SYSTEM_TITLE, Directory, Sender, key_fingerprint
from .server import Rejection

log = logging.getLogger("collection.push")

_FIELDS = (
    "id",
    "serial",
    "organisation_id",
    "endpoint__security",
    "endpoint__system_title",
    "endpoint__auth_key",
    "endpoint__block_key",
)


def _meters():
    return Meter.objects.select_related("endpoint").only(*_FIELDS)


def _key(value) -> bytes | None:
    try:
        raw = bytes.fromhex(str(value or ""))
    except ValueError:
        return None
    return raw if len(raw) == 16 else None


def _title(value: str) -> bytes | None:
    try:
        raw = bytes.fromhex(value or "")
    except ValueError:
        return None
    return raw if len(raw) == 8 else None


def _sender(meter: Meter, counters: dict[int, tuple[str, int]]) -> Sender:
    endpoint = meter.endpoint
    title = _title(endpoint.system_title)
    block_key, auth_key = _key(endpoint.block_key), _key(endpoint.auth_key)
    key_id = key_fingerprint(block_key, title) if block_key and title else ""
    stored = counters.get(meter.pk)
    floor = stored[1] if stored and stored[0] == key_id else 0
    return Sender(
        meter_id=meter.pk,
        serial=meter.serial,
        organisation_id=meter.organisation_id,
        system_title=title,
        block_key=block_key,
        auth_key=auth_key,
        accepts_plain=endpoint.security != Security.HIGH,
        floor_ic=floor,
        key_id=key_id,
    )


def _counters(meter_ids) -> dict[int, tuple[str, int]]:
    rows = PushCounter.objects.filter(meter_id__in=list(meter_ids))
    return {m: (k, ic) for m, k, ic in rows.values_list("meter_id", "key_id", "last_ic")}


def find_sender(kind: str, ident: bytes) -> Sender | None:
    """Blocking registry lookup of one sender."""
    if kind == SYSTEM_TITLE:
        meters = list(_meters().filter(endpoint__system_title__iexact=ident.hex())[:2])
        if len(meters) != 1:
            if len(meters) > 1:
                log.error("system title %s is registered on several meters", ident.hex())
            return None
        meter = meters[0]
    elif kind == LOGICAL_DEVICE:
        try:
            name = ident.decode("ascii")
        except UnicodeDecodeError:
            return None
        candidates = [name] + ([name[3:]] if len(name) > 3 else [])
        found = {m.serial: m for m in _meters().filter(serial__in=candidates)}
        meter = next((found[c] for c in candidates if c in found), None)
        if meter is None:
            return None
    else:  # an identity kind no meter is registered by yet (e.g. a bare device address)
        return None
    return _sender(meter, _counters([meter.pk]))


def all_ciphering_senders() -> list[Sender]:
    """Every meter with a system title (preload)."""
    meters = list(_meters().filter(endpoint__isnull=False).exclude(endpoint__system_title=""))
    counters = _counters(m.pk for m in meters)
    return [_sender(m, counters) for m in meters]


class DatabaseDirectory(Directory):
    """Senders from the meter registry, with TTL caches and coalesced lookups."""

    def __init__(
        self,
        positive_ttl: float = 300.0,
        negative_ttl: float = 30.0,
        max_negative: int = 10_000,
        retry_after_bad_tag: float = 10.0,
    ) -> None:
        super().__init__()
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self.max_negative = max_negative
        self.retry_after_bad_tag = retry_after_bad_tag
        self._cache: dict[tuple[str, bytes], tuple[float, Sender | None]] = {}
        self._negatives = 0
        self._inflight: dict[tuple[str, bytes], asyncio.Future] = {}
        self.queries = 0

    def cached(self, kind: str, ident: bytes):
        hit = self._cache.get((kind, ident))
        if hit is None or hit[0] < time.monotonic():
            return MISSING
        return hit[1]

    def _store(self, key: tuple[str, bytes], sender: Sender | None, ttl: float) -> None:
        if sender is None:
            if self._negatives >= self.max_negative:
                self._cache = {k: v for k, v in self._cache.items() if v[1] is not None}
                self._negatives = 0
            self._negatives += 1
        self._cache[key] = (time.monotonic() + ttl, sender)

    async def lookup(self, kind: str, ident: bytes) -> Sender | None:
        key = (kind, ident)
        found = self.cached(kind, ident)
        if found is not MISSING:
            return found
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            self.queries += 1
            sender = await sync_to_async(find_sender, thread_sensitive=True)(kind, ident)
            self._store(key, sender, self.positive_ttl if sender else self.negative_ttl)
            future.set_result(sender)
            return sender
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._inflight[key]

    def invalidate(self, kind: str, ident: bytes) -> None:
        # Keys failed: maybe changed in the registry. Look again soon, not on every forgery.
        hit = self._cache.get((kind, ident))
        if hit is not None and hit[1] is not None:
            expires = min(hit[0], time.monotonic() + self.retry_after_bad_tag)
            self._cache[(kind, ident)] = (expires, hit[1])

    async def preload(self) -> int:
        senders = await sync_to_async(all_ciphering_senders, thread_sensitive=True)()
        expires = time.monotonic() + self.positive_ttl
        for s in senders:
            if s.system_title:
                self._cache[(SYSTEM_TITLE, s.system_title)] = (expires, s)
        return len(senders)


def save_rejections(rows: list[Rejection]) -> None:
    """Blocking: one PushRejection per rate-limited entry."""
    PushRejection.objects.bulk_create(
        [
            PushRejection(
                reason=r.reason,
                peer=r.peer[:64],
                first_at=r.first_at,
                last_at=r.last_at,
                occurrences=r.occurrences,
                system_title=r.system_title[:16],
                logical_device=r.logical_device[:64],
                meter_id=r.meter_id,
                organisation_id=r.organisation_id,
                detail=r.detail[:200],
            )
            for r in rows
        ]
    )


async def persist_rejections(rows: list[Rejection]) -> None:
    await sync_to_async(save_rejections, thread_sensitive=True)(rows)


async def close_connections() -> None:
    """Close the database connections of the lookup thread (on shutdown)."""
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()


__all__ = [
    "LOGICAL_DEVICE",
    "SYSTEM_TITLE",
    "DatabaseDirectory",
    "close_connections",
    "persist_rejections",
]
