"""Daily export drops: a target's MeterReadings, EndDeviceEvents and MeterConfig files for
one local day, written into its outgoing/ folder.

* **One slot, one file**: the slot is (target, document, day); its file is named
  `<organisation>-<document>-<YYYYMMDD>.xml` and its `ExchangeLog` row is unique in the
  database. A slot done is not written again (the receiver may have taken the file away
  already); `force=True` (the `exchange_export --force` command) rewrites it in place,
  under the same name.
* **Whole files only**: `folders.write_atomic` (hidden temporary name, fsync, rename).
* **Scope**: the meters the target's `run_as` user may see, within the target's
  organisation's subtree (`target_meters`).
* **SFTP targets**: the file written locally is then uploaded to the server's outgoing/
  (`upload`); a wrong host key or a refused login is permanent (given up at once, reported),
  anything else (a dropped connection) is retried like a local failure.
* **Failures**: the task (`reports.exchange_export`) retries with backoff
  (`AMI_EXCHANGE_ATTEMPTS`, default 5; `AMI_EXCHANGE_RETRY_S`, default 60 s, doubling); the
  row shows "failed, will retry"; at the last attempt it is failed, logged as an error,
  audited (`exchange_export_failed`) and raised as a "report delivery failed" alarm in the
  target's organisation (once per slot, linking to the row's page), cleared by the system
  at the target's next good export.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.choices import Outcome
from meters.alarms.events import EventKind
from meters.alarms.system import clear_system_alarms, raise_system_alarm
from meters.models import Meter
from meters.store.days import day_bounds, local_zone
from meters.store.query import DataQuery

from ..exporters import cim, cim_events
from ..models import ExchangeDirection, ExchangeLog, ExchangeState, ExchangeTarget
from . import folders, meterconfig, sftp

log = logging.getLogger(__name__)

METER_READINGS, END_DEVICE_EVENTS, METER_CONFIG = "MeterReadings", "EndDeviceEvents", "MeterConfig"
# The interval energy of the day, import and export, at the profiles' own resolution.
READING_CHANNELS = ["1-0:1.29.0*255", "1-0:2.29.0*255"]
ROW_MARKS = {METER_READINGS: b"<MeterReading>", END_DEVICE_EVENTS: b"<EndDeviceEvent>",
             METER_CONFIG: b"<Meter>"}  # fmt: skip


class RetryLater(Exception):
    def __init__(self, attempts: int, error: str):
        super().__init__(f"attempt {attempts} failed: {error}")
        self.attempts = attempts


def max_attempts() -> int:
    return int(getattr(settings, "AMI_EXCHANGE_ATTEMPTS", 5))


def backoff_seconds(attempts: int) -> int:
    base = int(getattr(settings, "AMI_EXCHANGE_RETRY_S", 60))
    return min(base * 2 ** max(attempts - 1, 0), 6 * 3600)


def stale_seconds() -> int:
    """A running claim older than this was left by a killed worker and is taken over."""
    return int(getattr(settings, "AMI_EXCHANGE_STALE_S", 3600))


def yesterday() -> date:
    return timezone.now().astimezone(local_zone()).date() - timedelta(days=1)


def documents(target: ExchangeTarget) -> list[str]:
    wanted = ((target.export_readings, METER_READINGS), (target.export_events, END_DEVICE_EVENTS),
              (target.export_config, METER_CONFIG))  # fmt: skip
    return [name for on, name in wanted if on]


def filename(target: ExchangeTarget, document: str, day: date) -> str:
    org = re.sub(r"[^A-Za-z0-9_-]", "_", target.organisation.code)
    return f"{org}-{document}-{day:%Y%m%d}.xml"


def target_meters(target: ExchangeTarget):
    """The meters a target exports: what its user may see, inside its organisation's subtree."""
    return (
        Meter.objects.restrict(target.run_as, "view")
        .filter(organisation__path__startswith=target.organisation.path)
        .order_by("serial")
    )


def content(target: ExchangeTarget, document: str, day: date) -> Iterator[bytes]:
    meters = target_meters(target)
    start, end = day_bounds(day)
    if document == METER_READINGS:
        query = DataQuery(meters, list(READING_CHANNELS), start, end, "raw")
        return cim.readings_stream(query)
    if document == END_DEVICE_EVENTS:
        meters = meters.select_related("service_point", "meter_model")
        return cim_events.stream(meters, start, end)
    if document == METER_CONFIG:
        meters = meters.select_related("meter_model", "service_point", "concentrator", "endpoint")
        return meterconfig.stream(meters.iterator(chunk_size=1000))
    raise ValueError(f"unknown document {document!r}")


def _counting(chunks: Iterator[bytes], mark: bytes, counter: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        counter[0] += chunk.count(mark)
        yield chunk


def _claim(target: ExchangeTarget, document: str, day: date, force: bool) -> ExchangeLog | None:
    """The slot's row, moved to running with one more attempt; None when it is done (or
    running elsewhere) and not forced."""
    name = filename(target, document, day)
    try:
        with transaction.atomic():
            ExchangeLog.objects.create(
                target=target, organisation_id=target.organisation_id,
                direction=ExchangeDirection.EXPORT, document=document, day=day,
                filename=name, state=ExchangeState.RETRYING,
            )  # fmt: skip
    except IntegrityError:
        pass  # the slot has its row already
    with transaction.atomic():
        row = (
            ExchangeLog.objects.select_for_update()
            .filter(target=target, document=document, day=day, direction=ExchangeDirection.EXPORT)
            .get()
        )
        stale = timezone.now() - timedelta(seconds=stale_seconds())
        if row.state == ExchangeState.RUNNING and row.started_at and row.started_at > stale:
            return None  # another worker is on it (a killed one's claim goes stale)
        if row.state == ExchangeState.DONE and not force:
            return None
        if row.state == ExchangeState.FAILED and not force:
            row.attempts = 0  # a new run after giving up starts counting again
        row.state, row.filename, row.started_at = ExchangeState.RUNNING, name, timezone.now()
        row.attempts += 1
        row.save(update_fields=["state", "filename", "attempts", "started_at"])
    return row


def export_slot(target: ExchangeTarget, document: str, day: date, *, force: bool = False):
    """Write one slot's file; returns its row (None: done already). Raises RetryLater when
    the write failed and another attempt is allowed."""
    row = _claim(target, document, day, force)
    if row is None:
        return None
    counter = [0]
    try:
        directory = folders.ensure(target) / "outgoing"
        size, digest = folders.write_atomic(
            directory, row.filename, _counting(content(target, document, day),
                                               ROW_MARKS[document], counter)
        )  # fmt: skip
        sent_to = f"{target.folder}/outgoing"
        if target.is_sftp:
            sent_to = upload(target, directory / row.filename)
    except Exception as exc:  # noqa: BLE001 - any failure is the slot's, retried and reported
        if isinstance(exc, sftp.TransferError):
            error = str(exc)[:300]  # said for an operator, never with a secret
        else:
            error = f"{exc.__class__.__name__}: {exc}"[:300]
        permanent = getattr(exc, "permanent", False)
        again = row.attempts < max_attempts() and not permanent
        row.state = ExchangeState.RETRYING if again else ExchangeState.FAILED
        row.summary, row.finished_at = error, timezone.now()
        row.save(update_fields=["state", "summary", "finished_at"])
        if again:
            log.warning("exchange export %s attempt %s failed: %s", row.filename, row.attempts,
                        error)  # fmt: skip
            raise RetryLater(row.attempts, error) from exc
        report_failure(row)
        return row
    row.state, row.size, row.sha256, row.rows = ExchangeState.DONE, size, digest, counter[0]
    row.summary = f"{counter[0]} {ROW_MARKS[document].decode()[1:-1]} element(s), {size} bytes"
    row.finished_at = timezone.now()
    row.save(update_fields=["state", "size", "sha256", "rows", "summary", "finished_at"])
    audit.record(
        "exchange_export", user=None, obj=target, organisation=target.organisation,
        detail=f"{row.filename} to {sent_to}: {row.summary}"[:500],
    )  # fmt: skip
    clear_system_alarms(
        target.organisation, EventKind.REPORT_DELIVERY_FAILED,
        reference_prefix=failure_reference(target, ""), at=row.finished_at,
        comment=f"delivered again: {row.filename} to {sent_to}", by_event="exchange_export",
    )  # fmt: skip
    return row


def failure_reference(target: ExchangeTarget, name: str) -> str:
    """What the alarm of a given-up export is on (with name "": every file of the target)."""
    return f"exchange {target.folder}/outgoing/{name}"


def upload(target: ExchangeTarget, local: Path) -> str:
    """Send a file written whole to the local outgoing/ to the SFTP server's outgoing/
    (`sftp.Session.upload_atomic`: the receiver sees the whole file or none); returns where."""
    with sftp.Session(target) as session:
        session.ensure_folders()
        session.upload_atomic("outgoing", local.name, folders.read_chunks(local))
    return f"{target.remote_label()}/outgoing"


def report_failure(row: ExchangeLog) -> None:
    """An export given up: an error in the log and the audit trail (the page shows it), and
    the organisation's "report delivery failed" alarm (once per slot)."""
    log.error("exchange export %s failed after %s attempts: %s", row.filename, row.attempts,
              row.summary)  # fmt: skip
    audit.record(
        "exchange_export_failed", user=None, obj=row.target, organisation=row.organisation,
        outcome=Outcome.FAILED, detail=f"{row.filename}: {row.summary}"[:500],
    )  # fmt: skip
    raise_system_alarm(
        row.organisation,
        EventKind.REPORT_DELIVERY_FAILED,
        reference=failure_reference(row.target, row.filename),
        link=reverse("reports:exchange-row", args=[row.pk]),
        at=timezone.now(),
    )


def remove_old(target: ExchangeTarget, now: datetime | None = None) -> int:
    """Remove the files of the target's outgoing/ (locally, and on its SFTP server) older than
    its `retention_days` (0: keep everything), left-over temporary files included; returns
    how many. A server that cannot be reached is tried again at the next daily run."""
    if not target.retention_days:
        return 0
    cutoff = ((now or timezone.now()) - timedelta(days=target.retention_days)).timestamp()
    outgoing = folders.ensure(target) / "outgoing"
    removed = []
    for path in sorted(outgoing.iterdir()):
        if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    where = f"{target.folder}/outgoing"
    if target.is_sftp:
        try:
            with sftp.Session(target) as session:
                session.ensure_folders()
                for entry in session.listing("outgoing"):
                    if entry.mtime < cutoff:
                        session.remove("outgoing", entry.name)
                        removed.append(f"(server) {entry.name}")
        except sftp.TransferError as exc:
            log.warning("exchange retention on %s stopped: %s", target.remote_label(), exc)
        where += f" and {target.remote_label()}/outgoing"
    if removed:
        log.info("exchange retention: %s file(s) removed from %s", len(removed), where)
        audit.record(
            "exchange_retention", user=None, obj=target, organisation=target.organisation,
            detail=f"{len(removed)} file(s) older than {target.retention_days} days removed "
            f"from {where}: {', '.join(removed)}"[:500],
        )  # fmt: skip
    return len(removed)
