"""Collection operations: start a run, read a batch, finish a run, read a meter on demand."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts import audit
from accounts.actions import delete_object, save_object
from accounts.models import Organisation
from accounts.scoping import scope_q
from amisite import pgbulk
from meters.alarms import engine as alarm_engine
from meters.models import CommStatus, Meter, MeterModel

from . import enqueue, progress, queues
from .choices import ReadItem, ResultStatus, RunKind, RunStatus
from .counters import DatabaseCounterStore
from .linelock import LineBusy
from .lines import line_limits, line_locks, record_lines
from .models import JobRun, MeterReadResult, ReadJob
from .protocols.errors import SystemTitleMismatch
from .reader import MeterOutcome, ReadPlan, default_window, read_batch
from .scheduling import drop_schedule, line_batches, sync_schedule
from .status import publish_status
from .storing import profile_since, store_outcomes, summary, values_in
from .targets import TARGET_RELATED, NotReadable, build_target, lines_of, model_channels

log = logging.getLogger(__name__)

# A batch picked up more often than this is poison: its meters are failed, not retried.
MAX_DELIVERIES = 3
UNREACHABLE_AFTER = 3  # consecutive failed runs
INTERRUPTED = "Interrupted"  # error kind of meters a dead process left unread
BATCH_ERROR = "BatchError"  # error kind of meters whose batch's task raised


def job_meters(job: ReadJob):
    """The meters a job reads: its grid subtree, model, list and status filter, in scope."""
    meters = Meter.objects.filter(organisation__path__startswith=job.organisation.path)
    if job.grid_node_id:
        meters = meters.filter(service_point__path__startswith=job.grid_node.path)
    if job.meter_model_id:
        meters = meters.filter(meter_model_id=job.meter_model_id)
    listed = list(job.meters.values_list("pk", flat=True))
    if listed:
        meters = meters.filter(pk__in=listed)
    if job.meter_status:
        meters = meters.filter(status__in=job.meter_status)
    return meters.order_by("pk")


def start_run(job: ReadJob, *, kind: str = RunKind.SCHEDULED, acting_user=None) -> JobRun:
    """Create a run with one pending result per meter and queue its batches after commit."""
    since, until = default_window(timezone.now(), days=1)
    meter_ids = list(job_meters(job).values_list("pk", flat=True))
    return _create_run(
        job, job.organisation, kind, job.items, meter_ids, since, until, acting_user=acting_user
    )


# A re-read names its period; longer ones are split by the operator (a meter keeps ~10 days
# to a few months of profile anyway).
MAX_REREAD = timedelta(days=92)
REREAD_ITEMS = (ReadItem.PROFILE, ReadItem.EVENTS)


class BadPeriod(ValueError):
    """A re-read period that cannot be read (empty, in the future, too long)."""


def reread_period(
    *, since, until, acting_user, job: ReadJob | None = None, meters=None, items=None
) -> JobRun:
    """Read the load profile (and events) of a named period again, for a job's meters or a
    set of meters (already scoped by the caller), whatever the store holds: what comes back
    goes through the store's merge rules (measured replaces estimates and gaps, never an
    edit; a repeated value writes nothing). Audited; returns the run."""
    now = timezone.now()
    if since >= until:
        raise BadPeriod("the period's start must be before its end")
    if until > now:
        raise BadPeriod("the period cannot end in the future")
    if until - since > MAX_REREAD:
        raise BadPeriod(f"at most {MAX_REREAD.days} days at once")
    items = [i for i in (items or REREAD_ITEMS) if i in ReadItem.values]
    if not items:
        raise BadPeriod("nothing to read")
    if job is not None:
        meter_ids = list(job_meters(job).values_list("pk", flat=True))
        organisation = job.organisation
    else:
        meter_ids = list(meters.order_by("pk").values_list("pk", flat=True))
        organisation = _common_organisation(meters)
    return _create_run(
        job,
        organisation,
        RunKind.REREAD,
        items,
        meter_ids,
        since,
        until,
        acting_user=acting_user,
        batch_size=job.batch_size if job else 200,
    )


def _common_organisation(meters) -> Organisation:
    """The deepest organisation holding all these meters (the run is scoped to it)."""
    paths = [
        p.strip("/").split("/") for p in set(meters.values_list("organisation__path", flat=True))
    ]
    common = paths[0] if paths else []
    for parts in paths[1:]:
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
    if not common:
        raise BadPeriod("these meters share no organisation")
    return Organisation.objects.get(pk=int(common[-1]))


def _create_run(
    job, organisation, kind, items, meter_ids, since, until, *, acting_user, batch_size=None
) -> JobRun:
    now = timezone.now()
    batch_size = batch_size or job.batch_size
    with transaction.atomic():
        run = JobRun.objects.create(
            job=job,
            organisation=organisation,
            kind=kind,
            items=items,
            requested_by=acting_user,
            since=since,
            until=until,
        )
        MeterReadResult.objects.bulk_create(
            [MeterReadResult(run=run, meter_id=pk) for pk in meter_ids], batch_size=2000
        )
        run.total = len(meter_ids)
        run.status = RunStatus.RUNNING if meter_ids else RunStatus.SUCCEEDED
        run.started_at = now
        run.finished_at = None if meter_ids else now
        run.save()
        if acting_user is not None:
            changes = {"run": run.pk, "meters": run.total}
            if kind == RunKind.REREAD:
                changes |= {"since": since.isoformat(), "until": until.isoformat()}
            audit.record(
                "reread_period" if kind == RunKind.REREAD else "start_run",
                user=acting_user,
                obj=job,
                changes=changes,
            )
        # One batch per worker loop; a shared line's meters stay in one (they take turns);
        # split by queue first (collection/queues.py: per region and/or protocol).
        lines = lines_of(meter_ids)
        batches = [
            (queue, batch)
            for queue, ids in queues.split(meter_ids).items()
            for batch in line_batches(ids, lines, batch_size)
        ]
        transaction.on_commit(
            lambda: [enqueue.read_batch(run.pk, batch, queue=queue) for queue, batch in batches]
        )
    return run


def process_batch(run_id: int, meter_ids: list[int]) -> dict:
    """Read one batch of a run (idempotent: meters already finished in this run are skipped)."""
    run = JobRun.objects.select_related("job").get(pk=run_id)
    job = run.job
    with transaction.atomic():
        pending = MeterReadResult.objects.filter(run=run, meter_id__in=meter_ids).exclude(
            status__in=[ResultStatus.OK, ResultStatus.FAILED]
        )
        pending.update(deliveries=F("deliveries") + 1)
        poisoned = list(
            pending.filter(deliveries__gt=MAX_DELIVERIES).values_list("meter_id", flat=True)
        )
        todo = list(
            pending.filter(deliveries__lte=MAX_DELIVERIES).values_list("meter_id", flat=True)
        )
    for meter_id in poisoned:
        _finish_result(
            run,
            meter_id,
            ok=False,
            kind="Quarantined",
            error=f"batch delivered more than {MAX_DELIVERIES} times; not retried",
        )
    if not todo:
        finish_run_if_done(run.pk)
        return {"read": 0, "skipped": len(meter_ids)}
    meters = list(Meter.objects.filter(pk__in=todo).select_related(*TARGET_RELATED))
    channels = model_channels({meter.meter_model_id for meter in meters})
    targets = []
    for meter in meters:
        try:
            # Every session keeps its frames; only a failed one's are stored (run page).
            targets.append(
                build_target(meter, exchange_log=True, channels=channels[meter.meter_model_id])
            )
        except NotReadable as exc:
            _finish_result(run, meter.pk, ok=False, kind="NotReadable", error=str(exc))
    MeterReadResult.objects.filter(run=run, meter_id__in=[t.meter_id for t in targets]).update(
        status=ResultStatus.RUNNING, started_at=timezone.now()
    )
    until = run.until or timezone.now()
    default_since = run.since or (until - timedelta(days=1))
    # On-demand reads and re-reads read the period they name, whatever the store holds.
    if ReadItem.PROFILE in run.items and run.kind not in (RunKind.ON_DEMAND, RunKind.REREAD):
        horizon = timedelta(days=job.backfill_days if job else 7)
        models = {m.pk: m.meter_model_id for m in meters}
        known = profile_since([t.meter_id for t in targets], models, default_since, horizon)
        targets = [
            replace(t, profile_since=known[t.meter_id]) if t.meter_id in known else t
            for t in targets
        ]
    plan = ReadPlan(
        items=frozenset(run.items),
        until=until,
        default_since=default_since,
        retries=job.retries if job else 1,
        retry_backoff_s=job.retry_backoff_s if job else 1,
        clock_drift_limit_s=job.clock_drift_limit_s if job else 30,
        sync_clock=job.sync_clock if job else False,
        clock_max_adjust_s=job.clock_max_adjust_s if job else 300,
    )
    concurrency = job.concurrency if job else 10
    limits = line_limits({t.line for t in targets if t.line})
    targets = [replace(t, line_limit=limits[t.line]) if t.line in limits else t for t in targets]
    watched = {}

    async def read_all():
        locks = line_locks()  # shared lines are held against other processes too
        try:
            return await read_batch(
                targets,
                plan,
                DatabaseCounterStore(),
                concurrency=concurrency,
                lines=watched,
                line_lock=locks.hold if locks else None,
            )
        finally:
            if locks:
                await locks.close()

    outcomes = asyncio.run(read_all())
    with transaction.atomic():
        # All of the batch's values in three bulk ingests, then every meter's outcome in a
        # few statements (not a handful of round trips per meter).
        ingest = store_outcomes(outcomes)
        _finish_results(run, [_record_outcome(run, outcome) for outcome in outcomes])
        record_lines(watched, outcomes, {m.pk: m for m in meters})
    finish_run_if_done(run.pk)
    return {"read": len(outcomes), "ok": sum(o.ok for o in outcomes), **ingest.as_dict()}


def fail_batch(run_id: int, meter_ids: list[int], error: BaseException) -> int:
    """The batch's task raised (an error not retried, or its retries spent): every meter of
    the batch still open in the run fails now with that error, and the run's counts take
    them, instead of staying "running" until the expiry job. Meters an earlier delivery
    finished are left alone (counted once). Comm status is left alone: the meters were not
    at fault. Returns how many were failed."""
    run = JobRun.objects.filter(pk=run_id).first()
    if run is None:  # the run was deleted meanwhile: nothing to close
        return 0
    text = f"the batch's task failed ({type(error).__name__}): {error}"
    with transaction.atomic():
        open_ids = list(
            run.results.filter(meter_id__in=meter_ids)
            .exclude(status__in=[ResultStatus.OK, ResultStatus.FAILED])
            .values_list("meter_id", flat=True)
        )
        _finish_results(
            run,
            [
                Finished(meter_id, ok=False, kind=BATCH_ERROR, error=text, system_fault=True)
                for meter_id in open_ids
            ],
        )
    finish_run_if_done(run.pk)
    log.error("run %s: batch of %d meters failed: %s", run.pk, len(open_ids), text)
    return len(open_ids)


def _remember_with_list_failure(outcome: MeterOutcome) -> str:
    """A meter answered GET-with-list wrongly: its model reads with single GETs from now on.

    Returns the note for the meter's result ("" when nothing happened)."""
    if not outcome.with_list_failure:
        return ""
    model = Meter.objects.select_related("meter_model").get(pk=outcome.meter_id).meter_model
    if MeterModel.objects.filter(pk=model.pk, get_with_list=True).update(get_with_list=False):
        audit.record(
            "set_get_with_list",
            obj=model,
            username="collection",
            changes={"get_with_list": False, "meter": outcome.serial},
            detail=outcome.with_list_failure,
        )
    return (
        f"{outcome.with_list_failure}: read with single GETs; meter model {model} uses single "
        "GETs from now on"
    )


def _record_outcome(run: JobRun, outcome: MeterOutcome) -> Finished:
    """A meter's side effects of its outcome (audit, security alarm, model fallback) and
    what its result row gets (`_finish_results` writes it)."""
    notes = _remember_with_list_failure(outcome)
    if isinstance(outcome.error, SystemTitleMismatch):
        _security_failure(run, outcome)
    if not outcome.ok:
        log_text = ""
        if outcome.exchange_log:
            log_text = "\n".join(
                f"{e.at.isoformat()} {e.direction} {e.data.hex()}" for e in outcome.exchange_log
            )
        return Finished(
            outcome.meter_id,
            ok=False,
            kind=outcome.error_kind,
            error=str(outcome.error),
            retryable=bool(outcome.error and outcome.error.retryable),
            attempts=outcome.attempts,
            exchange_log=log_text,
            notes=notes or _line_note(outcome),
            # Its line down, or kept busy by other processes: not the meter's failure.
            line_fault=outcome.line_fault or isinstance(outcome.error, LineBusy),
        )
    if outcome.clock_set:
        # Setting a meter's clock changes the meter: one activity row, like any command.
        meter = Meter.objects.get(pk=outcome.meter_id)
        audit.record(
            "set_clock",
            obj=meter,
            username="collection",
            changes={"run": run.pk, "meter_time": str(outcome.clock.meter_time)},
            detail="clock drift over the job's limit, within its maximum adjustment",
        )
    return Finished(
        outcome.meter_id,
        ok=True,
        values=values_in(outcome),
        attempts=outcome.attempts,
        data=summary(outcome) if run.kind == RunKind.ON_DEMAND else {},
        drift=outcome.clock.drift_seconds if outcome.clock else None,
        notes=notes,
    )


def _line_note(outcome: MeterOutcome) -> str:
    if isinstance(outcome.error, LineBusy):
        return f"line {outcome.line} busy: not tried"
    return f"line {outcome.line} down" if outcome.line_fault else ""


def _security_failure(run: JobRun, outcome: MeterOutcome) -> None:
    """A meter answering with another system title: logged, audited, alarmed -- never
    accepted. (The read itself fails like any other; nothing of the session is stored.)"""
    error = outcome.error
    details = {
        "run": run.pk,
        "expected": error.expected.hex().upper(),
        "received": error.received.hex().upper() if error.received else "",
    }
    log.warning("security failure on meter %s: %s", outcome.serial, error)
    meter = Meter.objects.get(pk=outcome.meter_id)
    audit.record(
        "security_failure",
        obj=meter,
        username="collection",
        changes=details,
        outcome=audit.Outcome.FAILED,
        detail=str(error),
    )
    events = alarm_engine.derive_security_failure(meter.pk, timezone.now(), **details)
    alarm_engine.evaluate_events(events)


@dataclass(frozen=True, slots=True)
class Finished:
    """How one meter's read in a run ended: what its result row and comm status get."""

    meter_id: int
    ok: bool
    kind: str = ""
    error: str = ""
    retryable: bool = False
    attempts: int = 0
    values: int = 0
    data: dict | None = None
    exchange_log: str = ""
    drift: float | None = None
    notes: str = ""
    line_fault: bool = False  # failed because its shared line is down: the line's failure
    system_fault: bool = False  # failed on the head-end's side: the comm status is left alone


RESULT_FIELDS = [
    "status",
    "error_kind",
    "error",
    "retryable",
    "attempts",
    "values_stored",
    "data",
    "exchange_log",
    "notes",
    "finished_at",
]
COMM_FIELDS = [
    "last_attempt",
    "last_success",
    "consecutive_failures",
    "unreachable",
    "last_error",
    "clock_drift_s",
]


def _finish_result(run, meter_id, *, ok, **fields) -> None:
    _finish_results(run, [Finished(meter_id, ok, **fields)])


def _finish_results(run, finished: list[Finished]) -> None:
    """Close meters' results of one run: result rows, the run's counts, comm statuses.

    Exactly once per meter: only results still open are closed (locked first, so a
    concurrent delivery of the same batch waits and then finds them closed); a result an
    earlier delivery already closed is left alone and not counted again.
    """
    if not finished:
        return
    now = timezone.now()
    by_meter = {f.meter_id: f for f in finished}
    with transaction.atomic():
        open_results = list(
            MeterReadResult.objects.select_for_update()
            .filter(run=run, meter_id__in=by_meter)
            .exclude(status__in=[ResultStatus.OK, ResultStatus.FAILED])
            .order_by("meter_id")
            .only("pk", "meter_id", "started_at")
        )
        if not open_results:  # all finished by an earlier delivery: count them once only
            return
        closed = []
        for result in open_results:
            f = by_meter[result.meter_id]
            result.status = ResultStatus.OK if f.ok else ResultStatus.FAILED
            result.error_kind, result.error = f.kind, f.error[:2000]
            result.retryable, result.attempts, result.values_stored = (
                f.retryable,
                f.attempts,
                f.values,
            )
            result.data, result.exchange_log = f.data or {}, f.exchange_log
            result.notes, result.finished_at = f.notes, now
            # When this meter's attempt began (or, never attempted, its run).
            closed.append((f, result.started_at or run.started_at or run.created_at))
        pgbulk.update_rows(MeterReadResult, open_results, RESULT_FIELDS)
        succeeded = sum(1 for f, _ in closed if f.ok)
        JobRun.objects.filter(pk=run.pk).update(
            done=F("done") + len(closed),
            succeeded=F("succeeded") + succeeded,
            failed=F("failed") + (len(closed) - succeeded),
            values_stored=F("values_stored") + sum(f.values for f, _ in closed),
        )
        _update_comm_statuses(closed, now)
        progress.publish_run(run.pk)


def _update_comm_statuses(closed: list[tuple[Finished, datetime]], now) -> None:
    """Fold outcomes into their meters' comm status, unless a newer success supersedes one.

    A failure about an attempt (or a run) that began before the meter's last success is old
    news (a run expiring late, a slow retry): the result row keeps it, the status does not.
    """
    closed = [(f, at) for f, at in closed if not f.system_fault]
    if not closed:
        return
    meter_ids = sorted(f.meter_id for f, _ in closed)
    CommStatus.create_missing(meter_ids)
    statuses = {
        s.meter_id: s
        for s in CommStatus.objects.select_for_update()
        .filter(meter_id__in=meter_ids)
        .order_by("meter_id")
    }
    changed = []
    for f, attempted_at in closed:
        status = statuses[f.meter_id]
        if not f.ok and status.last_success and attempted_at and attempted_at < status.last_success:
            continue
        status.last_attempt = max(filter(None, (status.last_attempt, now)))
        if f.ok:
            status.last_success, status.consecutive_failures, status.unreachable = now, 0, False
            status.last_error = ""
            if f.drift is not None:
                status.clock_drift_s = f.drift
        elif f.line_fault:
            # Its line is down: one fault of the line (CommLine), not one of each meter on it,
            # so the meter's count of failures (and the unreachable alarm) stays as it was.
            status.last_error = f"{f.kind}: {f.error}"[:2000]
        else:
            status.consecutive_failures += 1
            status.unreachable = status.consecutive_failures >= UNREACHABLE_AFTER
            status.last_error = f"{f.kind}: {f.error}"[:2000]
        changed.append(status)
    pgbulk.update_rows(CommStatus, changed, COMM_FIELDS)


def finish_run_if_done(run_id: int) -> None:
    with transaction.atomic():
        run = JobRun.objects.select_for_update().get(pk=run_id)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return
        if run.results.exclude(status__in=[ResultStatus.OK, ResultStatus.FAILED]).exists():
            return
        run.status = (
            RunStatus.SUCCEEDED
            if run.failed == 0
            else RunStatus.FAILED
            if run.succeeded == 0
            else RunStatus.PARTIAL
        )
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
        progress.publish_run(run.pk)
        # Home pages recompute their own scoped figures; the message carries no data.
        publish_status({"changed": "run"})


def request_on_demand_read(
    meter: Meter, items: list[str], *, acting_user, since=None, until=None
) -> JobRun:
    """Queue a read of one meter now (page, API or command), audited; returns its run."""
    unknown = set(items) - set(ReadItem.values)
    if unknown or not items:
        raise ValueError(f"unknown read items: {sorted(unknown)}" if unknown else "nothing to read")
    now = timezone.now()
    default_since, default_until = default_window(now, days=1)
    with transaction.atomic():
        run = JobRun.objects.create(
            organisation=meter.organisation,
            kind=RunKind.ON_DEMAND,
            items=items,
            requested_by=acting_user,
            since=since or default_since,
            until=until or default_until,
            total=1,
            status=RunStatus.RUNNING,
            started_at=now,
        )
        MeterReadResult.objects.create(run=run, meter=meter)
        audit.record(
            "read_meter", user=acting_user, obj=meter, changes={"items": items, "run": run.pk}
        )
        queue = queues.queues_of([meter.pk])[meter.pk]
        transaction.on_commit(lambda: enqueue.read_batch(run.pk, [meter.pk], queue=queue))
    return run


def expire_runs(now=None) -> int:
    """Close runs whose window has passed: what is still pending fails with that reason."""
    now = now or timezone.now()
    expired = 0
    running = JobRun.objects.filter(status=RunStatus.RUNNING, job__isnull=False).select_related(
        "job"
    )
    for run in running:
        if run.started_at and run.started_at + timedelta(minutes=run.job.window_minutes) < now:
            open_results = run.results.exclude(status__in=[ResultStatus.OK, ResultStatus.FAILED])
            for meter_id in open_results.values_list("meter_id", flat=True):
                _finish_result(
                    run,
                    meter_id,
                    ok=False,
                    kind="WindowClosed",
                    error="the job's window closed before this meter was read",
                )
            finish_run_if_done(run.pk)
            expired += 1
    return expired


def expire_interrupted_runs() -> int:
    """At a start that owns every worker (`make run`): close each run a dead process left open.

    Nothing can finish such a run, so it is closed at once, not when its window ends: its
    unread meters fail as "Interrupted". Comm status is left alone (nothing was tried).
    """
    expired = 0
    for run in JobRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]):
        with transaction.atomic():
            failed = run.results.exclude(status__in=[ResultStatus.OK, ResultStatus.FAILED]).update(
                status=ResultStatus.FAILED,
                error_kind=INTERRUPTED,
                error="the system stopped before this meter was read",
                finished_at=timezone.now(),
            )
            JobRun.objects.filter(pk=run.pk).update(
                done=F("done") + failed,
                failed=F("failed") + failed,
                error="Interrupted: the system stopped before the run finished",
            )
        finish_run_if_done(run.pk)
        expired += 1
    return expired


def resume_reads(jobs) -> list[JobRun]:
    """Start a run of each enabled job that never ran or whose last run was interrupted."""
    started = []
    for job in jobs.filter(enabled=True).order_by("pk"):
        last = job.runs.order_by("-created_at", "-id").first()
        if last is None or last.results.filter(error_kind=INTERRUPTED).exists():
            started.append(start_run(job, kind=RunKind.MANUAL))
    return started


def add_meters_to_read_job(job, meters, *, acting_user, filters=None) -> tuple[int, int]:
    """Add meters to a read job's explicit list, audited; returns (added, skipped).

    Only meters inside the job's organisation that the user may act on (write scope for
    read jobs) are added; the rest are counted as skipped, never silently widened.
    """
    through = ReadJob.meters.through
    wanted = meters.order_by().values_list("pk", flat=True)
    allowed = (
        Meter.objects.filter(pk__in=wanted)
        .filter(scope_q(acting_user, ReadJob, "change", field="organisation"))
        .filter(organisation__path__startswith=job.organisation.path)
    )
    with transaction.atomic():
        ReadJob.objects.select_for_update().filter(pk=job.pk).first()
        allowed_ids = list(allowed.values_list("pk", flat=True))
        total = meters.order_by().count()
        present = set(
            through.objects.filter(readjob_id=job.pk, meter_id__in=allowed_ids).values_list(
                "meter_id", flat=True
            )
        )
        new = [pk for pk in allowed_ids if pk not in present]
        through.objects.bulk_create(
            [through(readjob_id=job.pk, meter_id=pk) for pk in new],
            batch_size=5000,
            ignore_conflicts=True,
        )
        audit.record(
            "read_job_add_meters",
            user=acting_user,
            obj=job,
            changes={
                "added": len(new),
                "already_in_job": len(present),
                "skipped": total - len(allowed_ids),
                "filters": filters or {},
            },
            detail=f"{len(new)} meters added to read job {job.name}",
        )
    return len(new), total - len(allowed_ids)


def save_read_job(job: ReadJob, *, acting_user, before: dict | None = None) -> ReadJob:
    """Create or change a read job (scope re-checked, audited) and keep its beat entry in step."""
    with transaction.atomic():
        save_object(job, acting_user=acting_user, before=before)
        sync_schedule(job)
    return job


def delete_read_job(job: ReadJob, *, acting_user) -> None:
    """Delete a read job and its beat entry; its runs stay (their job shows as deleted)."""
    with transaction.atomic():
        drop_schedule(job)
        delete_object(job, acting_user=acting_user)
