"""Reading a batch of meters concurrently in one event loop, with per-line limits and retries.

Pure asyncio and the protocol contract: no database access happens here, so the caller
resolves targets before and stores outcomes after (in batches).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from collection.protocols import base, registry
from collection.protocols.errors import (
    ConnectionFailed,
    MeterTimeout,
    NotAssociated,
    ProtocolError,
)

from .linelock import LineBusy
from .targets import MeterTarget

# How many sessions one shared line (concentrator, RS-485 bus, modem) takes at once.
DEFAULT_LINE_LIMIT = 1
# A shared line is taken for dead when this many of its meters in a row (none answering in
# between) got no answer at all -- or at once when the line itself cannot be opened.
LINE_SILENT_AFTER = 3


class LineDown(ConnectionFailed):
    """The meter was not tried: its shared line (converter, bus, concentrator) is down."""

    retryable = False


# The capability each read item needs: an item the meter's driver lacks (a Modbus meter has
# no clock, profile or event log) is left out of its read, not failed.
ITEM_CAPABILITY = {
    "clock": base.READ_CLOCK,
    "registers": base.READ_REGISTERS,
    "profile": base.READ_LOAD_PROFILE,
    "events": base.READ_EVENTS,
    "instantaneous": base.READ_INSTANTANEOUS,
    "relay": base.READ_RELAY,
}


@dataclass
class ReadPlan:
    """What to read in this run, and the time range for profiles and events."""

    items: frozenset[str]
    until: datetime
    default_since: datetime
    retries: int = 2
    retry_backoff_s: float = 5.0
    clock_drift_limit_s: float = 30.0
    sync_clock: bool = False
    clock_max_adjust_s: float = 300.0


@dataclass
class MeterOutcome:
    """What one meter gave (or why it gave nothing) in one run."""

    meter_id: int
    serial: str
    ok: bool = False
    attempts: int = 0
    error: ProtocolError | None = None
    clock: base.ClockReading | None = None
    clock_set: bool = False
    registers: list[base.RegisterValue] = field(default_factory=list)
    registers_at: datetime | None = None  # the registers are as of then (a concentrator's copy)
    profiles: list[base.ProfileBlock] = field(default_factory=list)
    events: list[base.MeterEvent] = field(default_factory=list)
    instantaneous: base.InstantaneousValues | None = None
    relay: base.RelayState | None = None
    exchange_log: list[base.Exchange] | None = None
    seconds: float = 0.0
    with_list_failure: str | None = None  # why the session fell back to one value per request
    line: str | None = None  # the shared line it was read on
    line_fault: bool = False  # it failed because its line is down (the line's fault, not its)

    @property
    def error_kind(self) -> str:
        return type(self.error).__name__ if self.error else ""


async def read_target(target: MeterTarget, plan: ReadPlan, counters) -> MeterOutcome:
    """Read one meter, retrying what a retry can help with, and return its outcome."""
    outcome = MeterOutcome(target.meter_id, target.serial)
    started = time.monotonic()
    for attempt in range(plan.retries + 1):
        outcome.attempts = attempt + 1
        session = registry.open_session(target.settings, counters)
        try:
            async with session:
                await _read_session(session, target, plan, outcome)
            outcome.ok, outcome.error = True, None
            break
        except ProtocolError as exc:
            outcome.error = exc
            outcome.exchange_log = session.exchange_log
            if not exc.retryable or attempt == plan.retries:
                break
            await asyncio.sleep(plan.retry_backoff_s * (2**attempt))
        except (TimeoutError, OSError) as exc:  # defensive: transports wrap these
            outcome.error = ConnectionFailed(str(exc) or type(exc).__name__)
            if attempt == plan.retries:
                break
            await asyncio.sleep(plan.retry_backoff_s * (2**attempt))
        finally:
            outcome.with_list_failure = outcome.with_list_failure or session.with_list_failure
    outcome.seconds = time.monotonic() - started
    return outcome


async def _read_session(
    session, target: MeterTarget, plan: ReadPlan, outcome: MeterOutcome
) -> None:
    # Partial results of a failed attempt are thrown away: an attempt is all or nothing.
    outcome.registers, outcome.profiles, outcome.events = [], [], []

    def wanted(item: str) -> bool:
        # Asked each time: a session may learn what its meter lacks only once it has signed
        # on (an IEC 62056-21 meter in mode A or B has no programming mode).
        return item in plan.items and ITEM_CAPABILITY.get(item, item) in session.capabilities

    if wanted("clock"):
        outcome.clock = await session.read_clock()
        drift = outcome.clock.drift_seconds
        if (
            plan.sync_clock
            and base.SET_CLOCK in session.capabilities  # e.g. no password to set it with
            and drift is not None
            and plan.clock_drift_limit_s < abs(drift) <= plan.clock_max_adjust_s
        ):
            outcome.clock = await session.set_clock()
            outcome.clock_set = True
    if wanted("registers") and target.registers:
        outcome.registers = await session.read_registers(list(target.registers))
        outcome.registers_at = session.as_of
    if wanted("profile"):
        for profile in target.profiles:
            since = target.profile_since.get(profile, plan.default_since)
            if since < plan.until:
                block = await session.read_load_profile(profile, since, plan.until)
                # Profile ranges include both ends. The capture at `since` is kept: a
                # cumulative profile's first interval is the difference to it (when it is
                # already stored, the store's keys make it a no-op).
                rows = tuple(r for r in block.rows if since <= r.timestamp <= plan.until)
                outcome.profiles.append(replace(block, rows=rows))
    if wanted("events"):
        for log in target.event_logs:
            outcome.events.extend(await session.read_events(log, plan.default_since, plan.until))
    if wanted("instantaneous"):
        outcome.instantaneous = await session.read_instantaneous()
    if wanted("relay"):
        outcome.relay = await session.relay_state()


async def gather_gated(
    items: list,
    run: Callable,
    *,
    line_of: Callable,
    concurrency: int,
    line_limit: int | Callable = DEFAULT_LINE_LIMIT,
    on_done: Callable | None = None,
    line_lock: Callable | None = None,
    busy: Callable | None = None,
) -> list:
    """`await run(item)` for every item, at most `concurrency` at once and `line_limit` (a
    number, or a function of the item) per shared line (`line_of(item)`: a line name, or None
    for a meter on its own line); the results in the order of `items`.

    An item waits for its line before it takes one of the `concurrency` slots, so the meters
    queued on a busy bus do not keep the meters of other lines waiting. `line_lock(line,
    limit)` (an async context manager, ``linelock.LineLocks.hold``) holds the line against
    other processes too; an item whose line stays busy there gets `busy(item, error)`."""
    task_gate = asyncio.Semaphore(concurrency)
    limit_of = line_limit if callable(line_limit) else (lambda item: line_limit)
    line_gates: dict[str, asyncio.Semaphore] = {}

    async def one(item):
        line = line_of(item)
        if line is None:
            async with task_gate:
                result = await run(item)
        else:
            limit = max(1, limit_of(item))
            gate = line_gates.get(line)
            if gate is None:
                gate = line_gates[line] = asyncio.Semaphore(limit)
            async with gate:
                if line_lock is None:
                    async with task_gate:
                        result = await run(item)
                else:
                    try:
                        async with line_lock(line, limit), task_gate:
                            result = await run(item)
                    except LineBusy as exc:
                        result = busy(item, exc)
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


@dataclass
class LineWatch:
    """One shared line during one batch: is it answering at all?

    Down when it cannot be opened (the converter refuses or drops the connection before any
    meter on it answered), or when LINE_SILENT_AFTER meters in a row (all of them, when the
    batch has fewer on the line, but never just one) got no answer at all.
    The meters left are then failed at once as LineDown, not tried one timeout after another.
    """

    line: str
    meters: int = 0
    answered: bool = False
    silent: int = 0
    down: str = ""  # why it is taken for down ("" while it is not)

    def record(self, outcome: MeterOutcome) -> None:
        error = outcome.error
        if outcome.ok or not isinstance(error, (ConnectionFailed, MeterTimeout)):
            self.answered, self.silent = True, 0  # a meter answered, even if with an error
            return
        if isinstance(error, (LineDown, LineBusy)):
            return  # not tried
        self.silent += 1
        opened = isinstance(error, ConnectionFailed) and not isinstance(error, NotAssociated)
        # Silence takes two meters at least: one silent meter behind a working concentrator
        # is that meter's failure, not the concentrator's.
        silent_limit = max(2, min(LINE_SILENT_AFTER, self.meters))
        if (opened and not self.answered) or self.silent >= silent_limit:
            self.down = self.down or f"{outcome.error_kind}: {error}"


def _watched_lines(targets: list[MeterTarget]) -> dict[str, LineWatch]:
    """The lines worth watching: more than one meter on them, or a concentrator."""
    counts: dict[str, int] = defaultdict(int)
    for t in targets:
        if t.line is not None:
            counts[t.line] += 1
    return {
        line: LineWatch(line, meters=n)
        for line, n in counts.items()
        if n > 1 or line.startswith("concentrator:")
    }


async def read_batch(
    targets: list[MeterTarget],
    plan: ReadPlan,
    counters,
    *,
    concurrency: int = 100,
    on_outcome: Callable[[MeterOutcome], None] | None = None,
    lines: dict[str, LineWatch] | None = None,
    line_lock: Callable | None = None,
) -> list[MeterOutcome]:
    """Read every target, at most `concurrency` at once and each line's limit per shared line.

    A shared line found down (:class:`LineWatch`) fails its meters not yet tried as LineDown,
    and marks every failure on it that was the line's (`line_fault`): the caller counts one
    line fault, not one unreachable meter each. `lines` (filled here when given) is how each
    watched line ended."""
    watches = _watched_lines(targets)
    if lines is not None:
        lines.update(watches)

    async def one(target: MeterTarget) -> MeterOutcome:
        watch = watches.get(target.line) if target.line else None
        if watch is not None and watch.down:
            outcome = MeterOutcome(target.meter_id, target.serial, line=target.line)
            outcome.error = LineDown(f"not tried: line {target.line} is down ({watch.down})")
            return outcome
        outcome = await read_target(target, plan, counters)
        outcome.line = target.line
        if watch is not None:
            watch.record(outcome)
        return outcome

    def busy(target: MeterTarget, error: LineBusy) -> MeterOutcome:
        return MeterOutcome(target.meter_id, target.serial, error=error, line=target.line)

    outcomes = await gather_gated(
        targets,
        one,
        line_of=lambda target: target.line,
        concurrency=concurrency,
        line_limit=lambda target: target.line_limit,
        on_done=on_outcome,
        line_lock=line_lock,
        busy=busy,
    )
    for outcome in outcomes:
        watch = watches.get(outcome.line) if outcome.line else None
        if watch is not None and watch.down and not outcome.ok:
            outcome.line_fault = isinstance(outcome.error, (ConnectionFailed, MeterTimeout))
    return outcomes


def default_window(now: datetime, days: int = 1) -> tuple[datetime, datetime]:
    """The last `days` whole quarter-hours up to now (interval ends)."""
    until = now.replace(second=0, microsecond=0)
    until -= timedelta(minutes=until.minute % 15)
    return until - timedelta(days=days), until
