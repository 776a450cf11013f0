"""Garbage collection in the web processes: what lives for good is not looked at again.

CPython's full collection (generation 2) walks every object the process holds, with the GIL
held: every request and socket of the process stops for it. A web worker holds ~310,000
objects once the site is imported (Django, the report engine's numpy/scipy/scikit-learn,
the URL configuration, the API schema): 150 ms a collection on a quiet core. Requests in
flight live long enough to be promoted and die old, so under load the full collection came
every 4-8 s and took 0.3-1.2 s on a busy machine (#21: the page stalls of bench/web_load.py
--timeline). A worker holding 2,000 websockets held 400,000 more, and took up to 2.5 s.

So, in each web worker (`amisite.serve` only: tests and commands keep Python's default):
- once the worker has warmed up (`amisite.asgi`'s warm-up: URL configuration, API schema),
  collect and then `gc.freeze()`: what is alive then moves to a permanent generation no
  collection walks; a full collection then walks only what was made since (~30,000 objects
  in a page worker: 16-80 ms);
- every `AMI_GC_REFREEZE_SECONDS` (60; 0: only the first freeze) `refreeze()`: collect
  what is not frozen (what died since is freed) and freeze the rest, so what has lived a
  minute (sockets opened since, caches filled) joins the permanent generation: a walk of
  what is new only, like any full collection now (16-80 ms a page worker);
- every `AMI_GC_FULL_SECONDS` (600) `refreeze(full=True)`: unfreeze, collect everything,
  freeze again. Frozen objects that died since (a closed socket's cycles, an expired cache
  entry) are freed only by this walk of every object (150 ms in a page worker, 1.2 s in one
  holding 2,000 sockets under load), so they are kept at most this long.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from amisite import capacity

log = logging.getLogger(__name__)
DEFAULT_REFREEZE_SECONDS = 60.0
DEFAULT_FULL_SECONDS = 600.0


def refreeze_seconds() -> float:
    """`AMI_GC_REFREEZE_SECONDS`: seconds between refreezes (0: freeze once, never again)."""
    return capacity.seconds("AMI_GC_REFREEZE_SECONDS", DEFAULT_REFREEZE_SECONDS)


def full_seconds() -> float:
    """`AMI_GC_FULL_SECONDS`: seconds between full refreezes (0: never)."""
    return capacity.seconds("AMI_GC_FULL_SECONDS", DEFAULT_FULL_SECONDS)


def refreeze(full: bool = False) -> dict:
    """Collect what is not frozen (full: unfreeze first, and collect everything), then freeze
    what is left; returns what it did."""
    started = time.perf_counter()
    if full:
        gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    return {
        "full": full,
        "freed": freed,
        "frozen": gc.get_freeze_count(),
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _run(ready: threading.Event, every: float, full_every: float, ready_timeout: float) -> None:
    ready.wait(ready_timeout)  # not warmed up by then: freeze what there is
    last_full = time.monotonic()
    full = False
    while True:
        done = refreeze(full)
        if full:
            last_full = time.monotonic()
        log.log(  # a line a minute per worker at INFO would be noise; the full ones are not
            logging.INFO if full else logging.DEBUG,
            "gc: %(frozen)s objects frozen, %(freed)s freed, in %(ms)s ms (full: %(full)s)",
            done,
            extra={"event": "gc_refreeze", **done},
        )
        if not every:
            return
        time.sleep(every)
        full = bool(full_every) and time.monotonic() - last_full >= full_every


def start(
    ready: threading.Event,
    every: float | None = None,
    full_every: float | None = None,
    ready_timeout: float = 120.0,
):
    """Freeze once `ready` is set, then refreeze every `every` s and fully every `full_every`
    s (the environment's if None), on a daemon thread of its own; returns the thread."""
    every = refreeze_seconds() if every is None else every
    full_every = full_seconds() if full_every is None else full_every
    thread = threading.Thread(
        target=_run, args=(ready, every, full_every, ready_timeout), name="ami-gc", daemon=True
    )
    thread.start()
    return thread
