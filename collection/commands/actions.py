"""The command queue's database side: queue, cancel, claim and execute, record, expire.

Exactly once: a command is claimed (queued -> sent, with the claiming task's id) in one
transaction, under a per-meter lock, before any frame goes out; a redelivered task finds its
commands sent by itself (the worker died mid-session) and only reads them back, never sends
them again; another task finds them claimed or done and does nothing. At most one session
per meter: a meter with a sent command is not claimed again until that command is finished
(or failed by `expire_commands` once it has expired). Every queued command of a meter that is
due is bundled into the one session, highest priority first.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import audit
from meters.models import Meter

from .. import enqueue
from ..counters import DatabaseCounterStore
from ..relay import record_relay_states, state_of_control
from ..status import publish_status
from ..targets import NotReadable, session_settings
from .kinds import PRIORITY_EMERGENCY, PRIORITY_NORMAL, RELAY_KINDS, clean_parameters
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


def _claim(meter_id: int, claim: str) -> list[Step]:
    """Under the meter's lock: expire what is overdue, then claim the due queued commands.

    Commands this claim already sent (a redelivery after a crash) come back read-back only.
    Nothing is claimed while another claim has a command of this meter sent.
    """
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, meter_id])
        mine = MeterCommand.objects.filter(meter_id=meter_id, state=CommandState.SENT)
        if mine.exclude(claim=claim).exists():
            return []  # another session with this meter is under way
        resent = [
            Step(c.pk, c.kind, c.parameters, execute=False)
            for c in mine.filter(claim=claim).order_by("-priority", "created_at", "id")
        ]
        queued = MeterCommand.objects.filter(meter_id=meter_id, state=CommandState.QUEUED)
        _expire(queued.filter(expires_at__lte=now), now)
        due = list(
            queued.filter(expires_at__gt=now)
            .exclude(not_before__gt=now)
            .order_by("-priority", "created_at", "id")
            .select_for_update(skip_locked=True)[: max(BUNDLE_MAX - len(resent), 0)]
        )
        for command in due:
            command.state, command.claim, command.sent_at = CommandState.SENT, claim, now
            command.attempts += 1
        MeterCommand.objects.bulk_update(due, ["state", "claim", "sent_at", "attempts"])
    return resent + [Step(c.pk, c.kind, c.parameters) for c in due]


def _expire(commands, now) -> int:
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
    done = {"confirmed": 0, "failed": 0, "retrying": 0, "sessions": 0}
    while steps := _claim(meter_id, claim):
        done["sessions"] += 1
        meter = Meter.objects.select_related("meter_model", "concentrator").get(pk=meter_id)
        try:
            target = session_settings(meter)
        except NotReadable as exc:
            outcomes = [
                Outcome(s.command_id, False, error_kind="NotReadable", error=str(exc))
                for s in steps
            ]
        else:
            outcomes = asyncio.run(run_session(target, steps, DatabaseCounterStore()))
        for key, n in _record(meter, claim, outcomes).items():
            done[key] += n
    return done


def _record(meter: Meter, claim: str, outcomes: list[Outcome]) -> dict:
    """Fold a session's outcomes into its commands, the meter's relay state and the audit."""
    now = timezone.now()
    counts = {"confirmed": 0, "failed": 0, "retrying": 0}
    relay_seen = None
    retry_at = None
    with transaction.atomic():
        commands = MeterCommand.objects.select_for_update().in_bulk(
            [o.command_id for o in outcomes]
        )
        for outcome in outcomes:
            command = commands[outcome.command_id]
            if command.state != CommandState.SENT or command.claim != claim:
                continue  # finished meanwhile (expired by the sweep): its record stands
            if outcome.relay_state and command.kind in RELAY_KINDS:
                relay_seen = outcome.relay_state
            command.answer = outcome.answer
            command.error_kind, command.error = outcome.error_kind, outcome.error
            retry = (
                not outcome.confirmed
                and outcome.retryable
                and command.attempts < command.max_attempts
                and now + timedelta(seconds=retry_backoff_s(command.attempts)) < command.expires_at
            )
            if retry:
                command.state, command.claim = CommandState.QUEUED, ""
                command.not_before = now + timedelta(seconds=retry_backoff_s(command.attempts))
                retry_at = min(filter(None, (retry_at, command.not_before)))
                counts["retrying"] += 1
            else:
                command.state = CommandState.CONFIRMED if outcome.confirmed else CommandState.FAILED
                command.finished_at = now
                counts["confirmed" if outcome.confirmed else "failed"] += 1
                audit.record(
                    f"command_{command.kind}",
                    user=command.requested_by,
                    username="collection",
                    obj=meter,
                    changes={"command": command.pk, "state": command.state, **command.answer},
                    outcome=audit.Outcome.SUCCESS if outcome.confirmed else audit.Outcome.FAILED,
                    detail=command.reason if outcome.confirmed else command.error,
                )
            command.save()
        state = state_of_control(relay_seen) if relay_seen else None
        if state is not None:
            record_relay_states({meter.pk: (state, now)})
            publish_status({"changed": "relay"})
        if retry_at is not None:
            delay = max((retry_at - now).total_seconds(), 0.0)
            transaction.on_commit(lambda: enqueue.execute_commands(meter.pk, countdown=delay))
    return counts


def expire_commands(now=None) -> int:
    """Sweep: queued commands past expiry expire; sent ones past expiry (their worker died
    and nothing redelivered it) fail, their outcome unknown. Returns commands changed."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = _expire(
            MeterCommand.objects.filter(state=CommandState.QUEUED, expires_at__lte=now), now
        )
        lost = MeterCommand.objects.filter(state=CommandState.SENT, expires_at__lte=now).update(
            state=CommandState.FAILED,
            finished_at=now,
            error_kind="Interrupted",
            error="sent, but its session never reported back: read the meter to know",
        )
    return expired + lost


__all__ = ["PRIORITY_EMERGENCY", "cancel_command", "execute_commands", "queue_command"]
