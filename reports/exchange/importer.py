"""Import drops: MeterConfig files a third party puts into a target's incoming/ folder.

`scan(target)` (the beat task `reports.exchange_import`, every minute, and the command
`manage.py exchange_import`) takes each complete file (`folders.complete_files`: no upload
name, unchanged for `AMI_EXCHANGE_SETTLE_S`) in name order, one scan per target at a time
(a cache lock, `AMI_EXCHANGE_LOCK_S`):

1. read at most `AMI_IMPORT_MAX_BYTES` (larger: rejected unread);
2. `meterconfig.check`: defusedxml (no DTD, entities or external references), then the
   schema `MeterConfig.xsd` with line numbers;
3. `meters.registry_io.import_records` as the target's `run_as` user, limited to the
   target's organisation's subtree: every meter checked first (unknown model, service point
   or concentrator, a meter of another organisation, a serial given twice, ...), then all
   written in ONE transaction together with the file's `ExchangeLog` row, or none;
4. after the commit, the file moves to processed/ (accepted) or rejected/ with
   `<name>.report.txt` beside it (every problem with its line and element).

A worker killed before the commit leaves the database as it was and the file in incoming/,
where the next scan takes it again; killed between commit and move, the file is imported
again, which changes nothing (meters are matched by serial) and is logged again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.choices import Outcome
from meters.registry_io import ImportResult, import_records
from meters.registry_io.importer import limits

from ..models import ExchangeDirection, ExchangeLog, ExchangeState, ExchangeTarget
from . import folders, meterconfig, sftp

log = logging.getLogger(__name__)
FORMAT = "cim-meterconfig"


@dataclass
class ImportOutcome:
    path: Path
    row: ExchangeLog


def lock_seconds() -> int:
    return int(getattr(settings, "AMI_EXCHANGE_LOCK_S", 600))


def lock_key(target: ExchangeTarget) -> str:
    return f"ami:exchange-import:{target.pk}"


def scan(target: ExchangeTarget) -> list[ImportOutcome] | None:
    """Import every complete file of the target's incoming/; None: another scan holds it."""
    if not target.imports:
        return []
    key = lock_key(target)
    if not cache.add(key, 1, lock_seconds()):
        return None
    try:
        if target.is_sftp:
            try:
                return scan_sftp(target)
            except sftp.TransferError as exc:  # what was claimed waits in processing/
                log.warning("exchange import from %s stopped: %s", target.remote_label(), exc)
                return []
        incoming = folders.ensure(target) / "incoming"
        done = []
        for path in folders.complete_files(incoming):
            try:
                done.append(import_file(target, path))
            except Exception:  # the file stays in incoming/ and is tried at the next scan
                log.exception("exchange import of %s failed; it stays in incoming/", path)
        return done
    finally:
        cache.delete(key)


def _problems_of(result: ImportResult) -> list[meterconfig.Problem]:
    out = []
    for error in result.errors:
        where = re.sub(r" \(line \d+\)", "", error.where)  # the line leads the report's line
        where += f", serial {error.serial}" if error.serial else ""
        out.append(meterconfig.Problem(error.line, where, error.message))
    return out


def scan_sftp(target: ExchangeTarget) -> list[ImportOutcome]:
    """Import the complete files of an SFTP target's incoming/ on the server.

    1. each complete file (`sftp.settled`: no upload name, unchanged for the settle time) is
       claimed: renamed on the server to `processing/<stamp>-<name>`;
    2. each file of processing/ not imported yet (no log row with its claimed name) is
       downloaded whole into the local incoming/ and imported there like a local drop
       (`import_file`: the local copy goes to processed/ or rejected/); one larger than
       `AMI_IMPORT_MAX_BYTES` is rejected without being downloaded;
    3. on the server it then moves to processed/, or to rejected/ after its
       `<name>.report.txt` (written under a temporary name first).

    A dropped connection stops the scan; the next one takes what is left in processing/: a
    file whose row exists is only moved (it is never imported twice), one without is
    downloaded again."""
    incoming = folders.ensure(target) / "incoming"
    done = []
    with sftp.Session(target) as session:
        session.ensure_folders()
        settle = folders.settle_seconds()
        for entry in session.listing("incoming"):
            if sftp.settled(entry, settle, folders.PARTIAL_SUFFIXES):
                session.claim(entry.name)
        for entry in session.listing("processing"):
            claimed = entry.name
            if claimed.startswith(".") or "-" not in claimed:
                continue  # not one of our claims (an upload's temporary name)
            row = ExchangeLog.objects.filter(
                target=target, direction=ExchangeDirection.IMPORT, remote_name=claimed
            ).first()
            if row is None and entry.size > limits()[0]:
                row = _refuse_unread(target, claimed, entry.size)  # never downloaded
            elif row is None:
                local = incoming / claimed.partition("-")[2]
                session.download("processing", claimed, local)
                outcome = import_file(target, local, remote_name=claimed)
                done.append(outcome)
                row = outcome.row
            if row.state == ExchangeState.ACCEPTED:
                session.move("processing", claimed, "processed")
            else:
                report = f"{claimed}.report.txt"
                session.upload_atomic("rejected", report, [(row.report or row.summary).encode()])
                session.move("processing", claimed, "rejected")
    return done


def _refuse_unread(target: ExchangeTarget, claimed: str, size: int) -> ExchangeLog:
    """A file on the server larger than `AMI_IMPORT_MAX_BYTES`: rejected without fetching it
    (its row and report as for a local file of that size)."""
    name = claimed.partition("-")[2]
    problems = [meterconfig.Problem(None, "file", f"larger than {limits()[0]} bytes")]
    text = report_text(name, problems)
    row = ExchangeLog.objects.create(
        target=target, organisation_id=target.organisation_id,
        direction=ExchangeDirection.IMPORT, document="MeterConfig", filename=name,
        state=ExchangeState.REJECTED, attempts=1, size=size, remote_name=claimed,
        summary=f"rejected: 1 problem(s); first: {problems[0].message}", report=text,
        started_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    _audit(target, row, Outcome.FAILED)
    log.warning("exchange import %s rejected unread: %s", name, row.summary)
    return row


def import_file(target: ExchangeTarget, path: Path, *, remote_name: str = "") -> ImportOutcome:
    """Import one file whole or reject it whole (see the module's text); `remote_name`: the
    claimed name on an SFTP server, kept on the row so that the file is never imported twice."""
    max_bytes = limits()[0]
    size, digest = folders.file_digest(path)
    row = ExchangeLog(
        target=target, organisation_id=target.organisation_id,
        direction=ExchangeDirection.IMPORT, document="MeterConfig", filename=path.name,
        attempts=1, size=size, sha256=digest, started_at=timezone.now(), remote_name=remote_name,
    )  # fmt: skip
    problems: list[meterconfig.Problem] = []
    result = ImportResult(fmt=FORMAT, dry_run=False)
    if size > max_bytes:
        problems.append(meterconfig.Problem(None, "file", f"larger than {max_bytes} bytes"))
    else:
        root, problems = meterconfig.check(path.read_bytes())
        if root is not None:
            user = target.run_as
            with transaction.atomic():
                result = import_records(
                    lambda: meterconfig.records(root), user, result, within=target.organisation
                )
                if result.applied:
                    row.state, row.rows = ExchangeState.ACCEPTED, result.rows
                    row.summary = result.summary()[:300]
                    row.finished_at = timezone.now()
                    row.save(force_insert=True)
                    _audit(target, row, Outcome.SUCCESS)
            problems = _problems_of(result)
    if row.state == ExchangeState.ACCEPTED:
        moved = folders.move_unique(path, folders.base(target) / "processed", _stamp())
        log.info("exchange import %s accepted: %s", moved.name, row.summary)
        return ImportOutcome(moved, row)
    return _reject(target, path, row, problems, result.rows)


def _stamp() -> str:
    return timezone.now().strftime("%Y%m%dT%H%M%S")


def report_text(name: str, problems: list[meterconfig.Problem]) -> str:
    lines = [f"{name}: rejected, nothing was imported ({len(problems)} problem(s)).", ""]
    for problem in problems:
        at = f"line {problem.line}" if problem.line else "file"
        lines.append(f"{at}, {problem.where}: {problem.message}")
    return "\n".join(lines) + "\n"


def _reject(target, path: Path, row: ExchangeLog, problems, rows: int) -> ImportOutcome:
    if not problems:  # import_records refused without saying why: never silently
        problems = [meterconfig.Problem(None, "file", "the file was not applied")]
    rejected = folders.base(target) / "rejected"
    moved = folders.move_unique(path, rejected, _stamp())
    text = report_text(path.name, problems)
    folders.write_atomic(rejected, f"{moved.name}.report.txt", [text.encode()])
    row.state, row.rows, row.finished_at = ExchangeState.REJECTED, rows, timezone.now()
    row.filename = path.name
    row.summary = f"rejected: {len(problems)} problem(s); first: {problems[0].message}"[:300]
    row.report = text[:20000]
    row.save(force_insert=True)
    _audit(target, row, Outcome.FAILED)
    log.warning("exchange import %s rejected: %s", path.name, row.summary)
    return ImportOutcome(moved, row)


def _audit(target, row: ExchangeLog, outcome: str) -> None:
    audit.record(
        "exchange_import", user=target.run_as, obj=target, organisation=target.organisation,
        outcome=outcome,
        changes={"file": row.filename, "sha256": row.sha256, "state": row.state},
        detail=f"{row.filename} from {_source(target)}/incoming: {row.summary}"[:500],
    )  # fmt: skip


def _source(target) -> str:
    return target.remote_label() if target.is_sftp else target.folder
