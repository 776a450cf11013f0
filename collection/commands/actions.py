"""The command queue's database side: queue, cancel, claim and execute, record, expire.

Exactly once: a command is claimed (queued -> sent, with the claiming task's id) in one
transaction, under a per-meter lock, before any frame goes out; a redelivered task finds its
commands sent by itself (the worker died mid-session) and reads them back first: what the
meter shows done is confirmed, a relay command the meter shows not done never arrived and is
sent then (its one execution); another task finds them claimed or done and does nothing. A
task the broker lost (never redelivered) is requeued under its own claim by
`requeue_lost_commands`, so it too only finishes what it had started. At most one session
per meter: a meter with a sent command is not claimed again until that command is finished
(or failed by `expire_commands` once it has expired). Every queued command of a meter that is
due is bundled into the one session, highest priority first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts import audit
from amisite.pgbulk import update_rows
from meters.models import ActualConfiguration, Meter

from .. import enqueue
from ..counters import DatabaseCounterStore
from ..lines import line_locks
from ..progress import publish_commands
from ..reader import gather_gated
from ..relay import record_relay_states, state_of_control
from ..status import publish_status
from ..targets import TARGET_RELATED, NotReadable, line_of, session_settings
from .kinds import (
    CONFIG_KINDS,
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    RELAY_KINDS,
    Kind,
    clean_parameters,
)
from .models import CommandState, MeterCommand
from .session import Outcome, Step, run_session

log = logging.getLogger(__name__)

BUNDLE_MAX = 20  # commands of one meter in one session
DEFAULT_EXPIRY = timedelta(hours=1)
LOCK_NAMESPACE = 7015  # pg advisory lock namespace of "a meter's command session is claimed"


def retry_backoff_s(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: `AMI_COMMAND_RETRY_BACKOFF_S` doubled per attempt."""
    base = settings.AMI_COMMAND_RETRY_BACKOFF_S
    return min(base * 2 ** max(attempt - 1, 0), 600.0)


def queue_command(
    meter: Meter,
    kind: str,
    *,
    acting_user,
    reason: str = "",
    parameters: dict | None = None,
    priority: int = PRIORITY_NORMAL,
    expires_in: timedelta = DEFAULT_EXPIRY,
    max_attempts: int = 3,
) -> MeterCommand:
    """Queue one command for one meter (scope is the caller's), audited; it runs after commit.

    Raises `kinds.BadCommand` on an unknown kind or parameters that do not fit it.
    """
    parameters = clean_parameters(kind, parameters)
    with transaction.atomic():
        command = MeterCommand.objects.create(
            organisation_id=meter.organisation_id,
            meter=meter,
            kind=kind,
            parameters=parameters,
            priority=priority,
            reason=reason,
            requested_by=acting_user,
            expires_at=timezone.now() + expires_in,
            max_attempts=max_attempts,
        )
        audit.record(
            "queue_command",
            user=acting_user,
            obj=meter,
            changes={"command": command.pk, "kind": kind, "priority": priority, **parameters},
            detail=reason,
        )
        transaction.on_commit(lambda: enqueue.execute_commands(meter.pk, priority=priority))
    return command


def queue_commands(
    meters: list[Meter],
    kind: str,
    *,
    acting_user,
    reason: str = "",
    parameters: dict | None = None,
    priority: int = PRIORITY_NORMAL,
    expires_in: timedelta = DEFAULT_EXPIRY,
    max_attempts: int = 3,
    origin: str = "",
) -> list[MeterCommand]:
    """The same command for many meters (scope is the caller's): one insert, one audit row
    per meter, and after commit batch tasks of `AMI_COMMAND_BATCH_SIZE` meters, not a task
    per meter. `origin` ("bulk:12") tags them: their progress is pushed to its watchers
    (`progress.publish_commands`) and `cancel_origin` calls back what is still queued.
    Raises `kinds.BadCommand` like `queue_command`."""
    parameters = clean_parameters(kind, parameters)
    expires_at = timezone.now() + expires_in
    with transaction.atomic():
        commands = MeterCommand.objects.bulk_create(
            MeterCommand(
                organisation_id=meter.organisation_id,
                meter=meter,
                kind=kind,
                parameters=parameters,
                priority=priority,
                reason=reason,
                requested_by=acting_user,
                expires_at=expires_at,
                max_attempts=max_attempts,
                origin=origin,
            )
            for meter in meters
        )
        audit.record_many(
            [
                audit.entry(
                    "queue_command",
                    user=acting_user,
                    obj=command.meter,
                    organisation=command.meter.organisation,
                    changes={"command": command.pk, "kind": kind, "priority": priority},
                    detail=reason,
                )
                for command in commands
            ]
        )
        meter_ids = sorted({meter.pk for meter in meters})
        transaction.on_commit(lambda: _enqueue(meter_ids, priority=priority))
        publish_commands(origin)
    return commands


class NotCancellable(Exception):
    """The command is already sent or finished."""


def cancel_command(command: MeterCommand, *, acting_user, reason: str = "") -> MeterCommand:
    """Cancel a queued command (a sent one can no longer be called back), audited."""
    with transaction.atomic():
        command = MeterCommand.objects.select_for_update().get(pk=command.pk)
        if command.state != CommandState.QUEUED:
            raise NotCancellable(f"the command is {command.get_state_display().lower()}")
        command.state = CommandState.CANCELLED
        command.finished_at = timezone.now()
        command.error = reason
        command.save(update_fields=["state", "finished_at", "error"])
        audit.record(
            "cancel_command",
            user=acting_user,
            obj=command.meter,
            changes={"command": command.pk, "kind": command.kind},
            detail=reason,
        )
    return command


def cancel_origin(origin: str, *, acting_user, reason: str = "") -> int:
    """Cancel every still-queued command of `origin` (those sent run to their end); one
    audit row per cancelled command, progress pushed. Returns how many were cancelled."""
    if not origin:
        return 0
    now = timezone.now()
    with transaction.atomic():
        cancelled = list(
            MeterCommand.objects.filter(origin=origin, state=CommandState.QUEUED)
            .select_for_update(of=("self",), skip_locked=True)
            .select_related("meter__organisation")
        )
        MeterCommand.objects.filter(pk__in=[c.pk for c in cancelled]).update(
            state=CommandState.CANCELLED, finished_at=now, error=reason[:2000]
        )
        audit.record_many(
            [
                audit.entry(
                    "cancel_command",
                    user=acting_user,
                    obj=c.meter,
                    organisation=c.meter.organisation,
                    changes={"command": c.pk, "kind": c.kind, "origin": origin},
                    detail=reason,
                )
                for c in cancelled
            ]
        )
        publish_commands(origin)
    return len(cancelled)


def _claim(meter_id: int, claim: str) -> list[Step]:
    """One meter's claim, waiting for its lock (see `_claim_many`)."""
    return _claim_many([meter_id], claim, wait=True).get(meter_id, [])


def _claim_many(meter_ids, claim: str, *, wait: bool) -> dict[int, list[Step]]:
    """In one transaction, under each meter's lock: expire what is overdue, then claim the
    due queued commands of every meter, as {meter id: steps}.

    `wait`: wait for a meter's lock (held by another claim's transaction for a moment);
    otherwise a locked meter is skipped (its holder runs its commands). Commands this claim
    already sent (a redelivery after a crash) come back read-back only. A meter with a
    command sent by another claim is left alone (one session per meter).
    """
    now = timezone.now()
    ids = sorted(set(meter_ids))
    steps: dict[int, list[Step]] = defaultdict(list)
    with transaction.atomic():
        if connection.vendor != "postgresql":
            # SQLite (`make run`): every transaction begins IMMEDIATE (amisite/config.py),
            # holding the database's one write lock: no other claim runs meanwhile.
            locked = ids
        else:
            locked = _lock_meters(ids, wait=wait)
        sent = MeterCommand.objects.filter(meter_id__in=locked, state=CommandState.SENT)
        busy = set(sent.exclude(claim=claim).values_list("meter_id", flat=True))
        free = [m for m in locked if m not in busy]
        order = ("meter_id", "-priority", "created_at", "id")
        fields = ("id", "meter_id", "kind", "parameters")
        for c in sent.filter(claim=claim, meter_id__in=free).order_by(*order).only(*fields):
            steps[c.meter_id].append(Step(c.pk, c.kind, c.parameters, execute=False))
        queued = MeterCommand.objects.filter(meter_id__in=free, state=CommandState.QUEUED)
        _expire(queued.filter(expires_at__lte=now), now)
        due = (
            queued.filter(expires_at__gt=now)
            .exclude(not_before__gt=now)
            .order_by(*order)
            .only(*fields)
            .select_for_update(skip_locked=True)
        )
        claimed = []
        for c in due:
            if len(steps[c.meter_id]) < BUNDLE_MAX:
                steps[c.meter_id].append(Step(c.pk, c.kind, c.parameters))
                claimed.append(c.pk)
        MeterCommand.objects.filter(pk__in=claimed).update(
            state=CommandState.SENT, claim=claim, sent_at=now, attempts=F("attempts") + 1
        )
    return {meter_id: s for meter_id, s in steps.items() if s}


def _lock_meters(ids: list[int], *, wait: bool) -> list[int]:
    """PostgreSQL: take each meter's advisory lock for the transaction; the meters locked.

    `wait`: in meter order, so two waiting claims never deadlock; otherwise a meter locked
    by another claim is skipped."""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, m) FROM unnest(%s::int[]) AS m",
                [LOCK_NAMESPACE, ids],
            )
            return ids
        cursor.execute(
            "SELECT m FROM unnest(%s::int[]) AS m WHERE pg_try_advisory_xact_lock(%s, m)",
            [ids, LOCK_NAMESPACE],
        )
        return [row[0] for row in cursor.fetchall()]


def _publish_origins(commands) -> None:
    """Progress of the origins among `commands` (a queryset about to change) after commit."""
    for origin in (
        commands.exclude(origin="").order_by().values_list("origin", flat=True).distinct()
    ):
        publish_commands(origin)


def _expire(commands, now) -> int:
    _publish_origins(commands)
    return commands.update(
        state=CommandState.EXPIRED,
        finished_at=now,
        error_kind="Expired",
        error="not sent before it expired",
    )


def execute_commands(meter_id: int, claim: str) -> dict:
    """Run every due command of one meter, one session per bundle, until none is left.

    `claim` identifies the caller (the Celery task id): the same claim redelivered reads
    back what it had sent instead of sending it again.
    """
    return _execute([meter_id], claim, wait=True, concurrency=1)


def execute_command_batch(meter_ids: list[int], claim: str) -> dict:
    """Run the due commands of many meters: one claim transaction for all of them, their
    sessions concurrently in one event loop (`AMI_COMMAND_BATCH_CONCURRENCY` at once, one
    per shared line), one transaction recording every outcome; again for commands queued
    meanwhile. A meter another claim holds is skipped. Same exactly-once rules as
    `execute_commands` (a redelivered batch only reads back what it had sent)."""
    return _execute(
        meter_ids, claim, wait=False, concurrency=settings.AMI_COMMAND_BATCH_CONCURRENCY
    )


def _execute(meter_ids, claim: str, *, wait: bool, concurrency: int) -> dict:
    done = {"confirmed": 0, "failed": 0, "retrying": 0, "sessions": 0}
    todo = list(meter_ids)
    while todo and (claimed := _claim_many(todo, claim, wait=wait)):
        done["sessions"] += len(claimed)
        meters = Meter.objects.select_related("organisation", *TARGET_RELATED).in_bulk(
            list(claimed)
        )
        outcomes = _run_sessions(meters, claimed, concurrency)
        for key, n in _record(meters, claim, outcomes).items():
            done[key] += n
        todo = list(claimed)  # commands queued for these meters mid-session
    return done


def _run_sessions(meters: dict, claimed: dict[int, list[Step]], concurrency: int) -> dict:
    """Every claimed meter's session, concurrently; {meter id: outcomes}."""
    outcomes: dict[int, list[Outcome]] = {}
    sessions = []
    for meter_id, steps in claimed.items():
        meter = meters[meter_id]
        try:
            sessions.append((meter_id, session_settings(meter), line_of(meter), steps))
        except NotReadable as exc:
            outcomes[meter_id] = [
                Outcome(s.command_id, False, error_kind="NotReadable", error=str(exc))
                for s in steps
            ]
    counters = DatabaseCounterStore()

    async def one(session):
        meter_id, target, _line, steps = session
        return meter_id, await run_session(target, steps, counters)

    def busy(session, error):
        meter_id, _target, _line, steps = session
        # Not sent: the line stayed busy with another process's sessions; tried again later.
        return meter_id, [
            Outcome(s.command_id, False, error_kind="LineBusy", error=str(error), retryable=True)
            for s in steps
        ]

    async def run_all():
        locks = line_locks()
        try:
            return await gather_gated(
                sessions,
                one,
                line_of=lambda session: session[2],
                concurrency=concurrency,
                line_lock=locks.hold if locks else None,
                busy=busy,
            )
        finally:
            if locks:
                await locks.close()

    if sessions:
        outcomes.update(asyncio.run(run_all()))
    return outcomes


def _record(meters: dict, claim: str, outcomes: dict[int, list[Outcome]]) -> dict:
    """Fold the sessions' outcomes into their commands, the meters' relay states and the
    audit, in one transaction: one bulk update of the commands, one of the relay states,
    one insert of the audit rows, one status push after commit."""
    now = timezone.now()
    counts = {"confirmed": 0, "failed": 0, "retrying": 0}
    relay_seen: dict[int, tuple[str, object]] = {}
    retry_at: dict[int, object] = {}
    changed, entries, configurations = [], [], []
    with transaction.atomic():
        commands = (
            MeterCommand.objects.select_related("requested_by")
            .select_for_update(of=("self",))
            .in_bulk([o.command_id for found in outcomes.values() for o in found])
        )
        for meter_id, found in outcomes.items():
            meter = meters[meter_id]
            for outcome in found:
                command = commands[outcome.command_id]
                if command.state != CommandState.SENT or command.claim != claim:
                    continue  # finished meanwhile (expired by the sweep): its record stands
                state = state_of_control(outcome.relay_state or "")
                if state is not None and command.kind in RELAY_KINDS:
                    relay_seen[meter_id] = (state, now)
                configurations += _read_back_configuration(command, outcome.answer, now)
                command.answer = outcome.answer
                command.error_kind, command.error = outcome.error_kind, outcome.error
                backoff = timedelta(seconds=retry_backoff_s(command.attempts))
                if (
                    not outcome.confirmed
                    and outcome.retryable
                    and command.attempts < command.max_attempts
                    and now + backoff < command.expires_at
                ):
                    command.state, command.claim = CommandState.QUEUED, ""
                    command.not_before = now + backoff
                    retry_at[meter_id] = min(filter(None, (retry_at.get(meter_id), now + backoff)))
                    counts["retrying"] += 1
                else:
                    command.state = (
                        CommandState.CONFIRMED if outcome.confirmed else CommandState.FAILED
                    )
                    command.finished_at = now
                    counts["confirmed" if outcome.confirmed else "failed"] += 1
                    entries.append(_audit_entry(command, meter, outcome.confirmed))
                changed.append(command)
        update_rows(MeterCommand, changed, RECORDED_FIELDS)
        audit.record_many(entries)
        for origin in sorted({c.origin for c in changed if c.origin}):
            publish_commands(origin)
        if configurations:  # one row per meter and section: the last read-back wins
            latest = {(row.meter_id, row.section): row for row in configurations}
            ActualConfiguration.objects.bulk_create(
                list(latest.values()),
                update_conflicts=True,
                unique_fields=["meter", "section"],
                update_fields=["value", "read_at", "command_id"],
            )
        if relay_seen:
            record_relay_states(relay_seen)
            publish_status({"changed": "relay"})
        if retry_at:
            delay = max((min(retry_at.values()) - now).total_seconds(), 0.0)
            transaction.on_commit(lambda: _enqueue(sorted(retry_at), countdown=delay))
    return counts


def _read_back_configuration(command: MeterCommand, answer: dict, now) -> list:
    """The configuration sections a command's answer read back from the meter (confirmed or
    not: a read-back that differs is what the meter holds), as rows to upsert."""
    if command.kind in CONFIG_KINDS and "actual" in answer:
        sections = {answer["section"]: answer["actual"]}
    elif command.kind == Kind.READ_CONFIGURATION:
        sections = answer.get("sections", {})
    else:
        return []
    return [
        ActualConfiguration(
            meter_id=command.meter_id,
            section=section,
            value=value,
            read_at=now,
            command_id=command.pk,
        )
        for section, value in sections.items()
    ]


RECORDED_FIELDS = ("state", "claim", "not_before", "finished_at", "answer", "error_kind", "error")


def _audit_entry(command: MeterCommand, meter: Meter, confirmed: bool):
    return audit.entry(
        f"command_{command.kind}",
        user=command.requested_by,
        username="collection",
        obj=meter,
        organisation=meter.organisation,
        changes={"command": command.pk, "state": command.state, **command.answer},
        outcome=audit.Outcome.SUCCESS if confirmed else audit.Outcome.FAILED,
        detail=command.reason if confirmed else command.error,
    )


def _enqueue(meter_ids: list[int], *, priority: int | None = None, countdown: float = 0) -> None:
    """A task per meter for one meter, else batch tasks of `AMI_COMMAND_BATCH_SIZE` meters."""
    if len(meter_ids) == 1:
        enqueue.execute_commands(meter_ids[0], priority=priority, countdown=countdown)
        return
    size = settings.AMI_COMMAND_BATCH_SIZE
    for start in range(0, len(meter_ids), size):
        enqueue.execute_command_batch(
            meter_ids[start : start + size], priority=priority, countdown=countdown
        )


def requeue_lost_commands(now=None) -> int:
    """Sweep: commands sent more than `AMI_COMMAND_LOST_AFTER_S` ago and still unfinished
    (their task died and the broker lost it, so nothing redelivers it) get their task again,
    under the same claim (the task id), so it reads back before it sends anything; queued
    ones that long waiting get a new task. Each is requeued at most once per
    `AMI_COMMAND_LOST_AFTER_S`. Returns the commands requeued."""
    now = now or timezone.now()
    lost_after = timedelta(seconds=settings.AMI_COMMAND_LOST_AFTER_S)
    by_claim: dict[str, set[int]] = defaultdict(set)
    with transaction.atomic():
        lost = (
            MeterCommand.objects.filter(
                state=CommandState.SENT, sent_at__lte=now - lost_after, expires_at__gt=now
            )
            .exclude(not_before__gt=now)
            .select_for_update(skip_locked=True)
        )
        rows = list(lost.values_list("pk", "claim", "meter_id"))
        for _pk, claim, meter_id in rows:
            by_claim[claim].add(meter_id)
        MeterCommand.objects.filter(pk__in=[pk for pk, _c, _m in rows]).update(
            not_before=now + lost_after
        )
        for claim, meters in sorted(by_claim.items()):
            ids = sorted(meters)
            transaction.on_commit(
                lambda ids=ids, claim=claim: enqueue.execute_command_batch(ids, task_id=claim)
            )
        # Queued ones whose task is gone (purged with the broker): a new task for their
        # meters (nothing of theirs was sent). `not_before` = now marks them handed again.
        stale = (
            MeterCommand.objects.filter(
                state=CommandState.QUEUED, created_at__lte=now - lost_after, expires_at__gt=now
            )
            .exclude(not_before__gt=now - lost_after)
            .select_for_update(skip_locked=True)
        )
        waiting = list(stale.values_list("pk", "meter_id"))
        MeterCommand.objects.filter(pk__in=[pk for pk, _m in waiting]).update(not_before=now)
        meter_ids = sorted({meter_id for _pk, meter_id in waiting})
        if meter_ids:
            transaction.on_commit(lambda: _enqueue(meter_ids))
    return len(rows) + len(waiting)


def expire_commands(now=None) -> int:
    """Sweep: queued commands past expiry expire; sent ones past expiry (their worker died
    and nothing redelivered it) fail, their outcome unknown. Returns commands changed."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = _expire(
            MeterCommand.objects.filter(state=CommandState.QUEUED, expires_at__lte=now), now
        )
        lost = MeterCommand.objects.filter(state=CommandState.SENT, expires_at__lte=now)
        _publish_origins(lost)
        lost = lost.update(
            state=CommandState.FAILED,
            finished_at=now,
            error_kind="Interrupted",
            error="sent, but its session never reported back: read the meter to know",
        )
    return expired + lost


__all__ = [
    "PRIORITY_EMERGENCY",
    "cancel_command",
    "cancel_origin",
    "execute_command_batch",
    "execute_commands",
    "queue_command",
    "queue_commands",
    "requeue_lost_commands",
]
