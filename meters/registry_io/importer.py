"""Import: validate every row first, then apply all rows in one transaction (or none).

Both passes stream: rows are read, validated and (second pass) written `CHUNK` at a time,
so an import holds the file's bytes and a chunk of meters, never the whole file's worth of
rows and meters (100k rows took the web process from 134 to 409 MB; bench/import_memory.py).

Each row creates a meter or updates the one with its serial. References are looked up only
within the importing user's scope; whatever lies outside is reported as unknown, exactly like
something that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import audit
from accounts.actions import OutOfScope, save_object
from accounts.models import Organisation
from accounts.scoping import org_within_scope

from ..choices import NodeKind
from ..models import DataConcentrator, GridNode, Meter, MeterModel
from .columns import BY_NAME, COLUMNS, REF, SECRET, CellError, default_for, parse_cell
from .formats import FORMATS, FileError, Record, iter_records

MAX_BYTES = 20 * 1024 * 1024
CHUNK = 1000
MAX_ROWS = 200_000
FK_FIELDS = ["meter_model", "service_point", "concentrator", "organisation"]
FIELD_TO_COLUMN = {"meter_model": "model"}


def limits() -> tuple[int, int, int]:
    max_bytes = int(getattr(settings, "AMI_IMPORT_MAX_BYTES", MAX_BYTES))
    max_rows = int(getattr(settings, "AMI_IMPORT_MAX_ROWS", MAX_ROWS))
    max_unpacked = int(getattr(settings, "AMI_IMPORT_MAX_UNPACKED_BYTES", 10 * max_bytes))
    return max_bytes, max_rows, max_unpacked


@dataclass
class RowError:
    line: int | None  # None: the file as a whole
    where: str
    serial: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "where": self.where, "serial": self.serial,
                "message": self.message}  # fmt: skip


@dataclass
class ImportResult:
    fmt: str
    dry_run: bool
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            return f"{len(self.errors)} error(s): nothing imported"
        verb = "would be" if self.dry_run else "were"
        return (f"{len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged ({verb} applied)")  # fmt: skip

    def as_dict(self) -> dict:
        return {
            "format": self.fmt, "dry_run": self.dry_run, "applied": self.applied,
            "rows": self.rows, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "errors": [e.as_dict() for e in self.errors],
            "summary": self.summary(),
        }  # fmt: skip


def guess_format(name: str, fmt: str | None = None) -> str:
    if not fmt and "." in (name or ""):
        fmt = name.rsplit(".", 1)[-1]
    fmt = (fmt or "").lower()
    if fmt not in FORMATS:
        raise FileError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return fmt


def read_bounded(fileobj, max_bytes: int) -> bytes:
    """Read at most `max_bytes`; a larger file is refused without reading it all."""
    size = getattr(fileobj, "size", None)
    if size is not None and size > max_bytes:
        raise FileError(f"the file is larger than {max_bytes} bytes")
    data = fileobj.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileError(f"the file is larger than {max_bytes} bytes")
    return data


def chunks(records, size: int | None = None):
    size = size or CHUNK
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_registry(fileobj, fmt: str, user, *, dry_run: bool = False) -> ImportResult:
    """Validate every row, then (unless dry run or any error) apply all in one transaction."""
    result = ImportResult(fmt=fmt, dry_run=dry_run)
    max_bytes, max_rows, max_unpacked = limits()
    try:
        fmt = result.fmt = guess_format(getattr(fileobj, "name", "") or "", fmt)
        data = read_bounded(fileobj, max_bytes)
    except FileError as exc:
        result.errors.append(RowError(None, "file", "", str(exc)))
        return result

    def records():
        return iter_records(data, fmt, max_rows=max_rows, max_unpacked=max_unpacked)

    return import_records(records, user, result)


def import_records(records, user, result: ImportResult, *, within=None) -> ImportResult:
    """Validate every record of `records()` (called once per pass), then (unless a dry run or
    any error) apply all in one transaction. `within`: an organisation the meters must lie
    in (its subtree), whatever else `user` may reach; a meter outside is a row error."""
    dry_run = result.dry_run
    try:
        planner = _Planner(user, within)
        for chunk in chunks(records()):  # first pass: validate, keep only the outcome
            result.rows += len(chunk)
            planner.plan(chunk, result)
    except FileError as exc:
        result.errors.append(RowError(None, "file", "", str(exc)))
        return result
    if not result.rows:
        result.errors.append(RowError(None, "file", "", "the file holds no meters"))
        return result
    if result.errors or dry_run:
        return result
    fmt = result.fmt
    try:
        with transaction.atomic():
            # Second pass: plan again (the rows were not kept) and write chunk by chunk.
            again, applying = _Planner(user, within), ImportResult(fmt=fmt, dry_run=False)
            for chunk in chunks(records()):
                for meter, before in again.plan(chunk, applying):
                    save_object(meter, acting_user=user, before=before)
                if applying.errors:  # changed between the passes: nothing is kept
                    result.errors.extend(applying.errors)
                    raise _Changed
            audit.record(
                "import",
                user=user,
                changes={"format": fmt, "rows": result.rows, "created": len(result.created),
                         "updated": len(result.updated), "unchanged": len(result.unchanged)},
                detail=f"meter registry import ({fmt}): {result.summary()}",
            )  # fmt: skip
    except _Changed:
        return result
    except OutOfScope as exc:
        result.errors.append(RowError(None, "file", str(getattr(exc, "serial", "")), str(exc)))
        return result
    result.applied = True
    return result


class _Changed(Exception):
    """The database changed between validating and applying; the transaction rolls back."""


class _Planner:
    """Turns records into unsaved meters (with their audit 'before'), collecting row errors."""

    def __init__(self, user, within: Organisation | None = None):
        self.user = user
        self.within = within
        self.models: dict[tuple[str, str], MeterModel | None] = {}
        self.points: dict[str, GridNode | None] = {}
        self.concentrators: dict[str, DataConcentrator | None] = {}
        self.organisations: dict[str, Organisation | None] = {}
        self.can_add = user.has_perm("meters.add_meter")
        self.seen: dict[str, int] = {}  # serial -> first line, across every chunk

    def plan(self, records: list[Record], result: ImportResult) -> list[tuple[Meter, Any]]:
        """Plan one chunk of rows (the caches of references are per chunk: bounded)."""
        seen = self.seen
        self.points.clear()
        self.concentrators.clear()
        existing = self._existing([str(r.values.get("serial") or "").strip() for r in records])
        plan = []
        for record in records:
            serial = str(record.values.get("serial") or "").strip()
            errors: list[str] = []
            if serial:
                if serial in seen:
                    errors.append(f"serial {serial!r} appears twice (first at line {seen[serial]})")
                else:
                    seen[serial] = record.line
            try:
                planned = self._row(record, serial, existing, errors)
            except _RowFailed:
                planned = None
            if planned is not None and not self._inside(planned[0]):
                errors.append(
                    f"meter {serial!r} would be in organisation {planned[0].organisation.code!r}, "
                    f"outside {self.within.code!r}"
                )
            if errors:
                for message in errors:
                    result.errors.append(RowError(record.line, record.where, serial, message))
                continue
            meter, before, changed = planned
            if before is None:
                result.created.append(serial)
            elif changed:
                result.updated.append(serial)
            else:
                result.unchanged.append(serial)
                continue
            plan.append((meter, before))
        return plan

    def _inside(self, meter: Meter) -> bool:
        if self.within is None or meter.organisation_id == self.within.pk:
            return True
        return meter.organisation.path.startswith(self.within.path)

    def _existing(self, serials: list[str]) -> dict[str, Meter | None]:
        """Meters by serial: the instance if the user may change it, None if it is not theirs."""
        found: dict[str, Meter | None] = {}
        wanted = sorted({s for s in serials if s})
        changeable = Meter.objects.restrict(self.user, "change").select_related(
            "meter_model", "service_point", "concentrator", "organisation", "endpoint"
        )
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for serial in Meter.objects.filter(serial__in=chunk).values_list("serial", flat=True):
                found[serial] = None
            for meter in changeable.filter(serial__in=chunk):
                found[meter.serial] = meter
        return found

    def _row(self, record: Record, serial: str, existing, errors: list[str]):
        """The row's meter, planned; every error of the row is in `errors` (then _RowFailed).

        Checking goes on past the first problem, on the cells that could be read, so a row
        with several mistakes reports them all at once."""
        values: dict[str, Any] = {}
        faulty: set[str] = set()  # columns already reported
        for name, raw in record.values.items():
            try:
                values[name] = parse_cell(BY_NAME[name], raw)
            except CellError as exc:
                errors.append(f"{name}: {exc}")
                faulty.add(name)
        for name in ("serial", "manufacturer", "model"):
            if name in values and not values[name]:
                errors.append(f"{name}: a value is required")
                faulty.add(name)
        meter, before = self._target(serial, existing, errors)
        secrets_changed = self._apply(meter, values, before is None, errors)
        exclude = FK_FIELDS + [BY_NAME[name].field for name in faulty if BY_NAME[name].field]
        try:
            meter.full_clean(exclude=exclude, validate_unique=False)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                column = FIELD_TO_COLUMN.get(name, name)
                prefix = "" if column == "__all__" else f"{column}: "
                errors.extend(prefix + message for message in messages)
        if errors:
            raise _RowFailed
        changed = before is None or secrets_changed or audit.snapshot(meter) != before
        return meter, before, changed

    def _target(self, serial: str, existing, errors: list[str]) -> tuple[Meter, Any]:
        """The meter the row updates (with its audit 'before') or a new one (before None).

        When the row may not be applied, a fresh meter still takes its values, so that the
        rest of the row is checked too."""
        if serial in existing:
            meter = existing[serial]
            if meter is None:
                errors.append(f"unknown meter {serial!r} (not within your organisation's scope)")
                return Meter(serial=serial), None
            return meter, audit.snapshot(meter)
        if not self.can_add:
            errors.append("you may not add meters")
        return Meter(serial=serial), None

    def _apply(self, meter: Meter, values: dict[str, Any], new: bool, errors: list[str]) -> bool:
        """Set the row's values on `meter`; returns whether a secret changed."""
        secrets_changed = False
        for column in COLUMNS:
            if column.kind in (REF,) or column.name == "serial" or column.name not in values:
                continue
            value = values[column.name]
            if column.kind == SECRET:
                if value and value != getattr(meter, column.field):
                    setattr(meter, column.field, value)
                    secrets_changed = True
                continue
            if value is None or (value == "" and not column.blank_allowed):
                value = default_for(column)
            setattr(meter, column.field, value)
        # The meter model (a missing name is reported already).
        key = (values.get("manufacturer"), values.get("model"))
        if all(key):
            if key not in self.models:
                self.models[key] = (
                    MeterModel.objects.restrict(self.user, "view")
                    .filter(manufacturer=key[0], name=key[1])
                    .first()
                )
            if self.models[key] is None:
                errors.append(f"unknown meter model {key[0]!r} {key[1]!r}")
            else:
                meter.meter_model = self.models[key]
        # Where it serves, and so its organisation.
        if "service_point" in values:
            code = values["service_point"]
            point = self._point(code) if code else None
            if code and point is None:
                errors.append(f"unknown service point {code!r}")
            meter.service_point = point
        if "concentrator" in values:
            code = values["concentrator"]
            concentrator = self._concentrator(code) if code else None
            if code and concentrator is None:
                errors.append(f"unknown concentrator {code!r}")
            meter.concentrator = concentrator
        organisation = None
        if values.get("organisation"):
            code = values["organisation"]
            organisation = self._organisation(code)
            if organisation is None:
                errors.append(f"unknown organisation {code!r}")
        if meter.service_point_id:
            point_org = meter.service_point.organisation
            if organisation is not None and organisation.pk != point_org.pk:
                errors.append(
                    f"organisation {organisation.code!r} is not that of service point "
                    f"{meter.service_point.code!r}"
                )
            meter.organisation = point_org
        elif organisation is not None:
            meter.organisation = organisation
        elif new:
            own = self.user.organisation
            if own is None or not org_within_scope(self.user, own, "add"):
                errors.append("organisation: needed for a meter without a service point")
            else:
                meter.organisation = own
        return secrets_changed

    def _point(self, code: str) -> GridNode | None:
        if code not in self.points:
            point = (
                GridNode.objects.restrict(self.user, "view")
                .filter(kind=NodeKind.SERVICE_POINT, code=code)
                .select_related("organisation")
                .first()
            )
            if point is not None and not org_within_scope(self.user, point.organisation):
                point = None
            self.points[code] = point
        return self.points[code]

    def _concentrator(self, serial: str) -> DataConcentrator | None:
        if serial not in self.concentrators:
            found = (
                DataConcentrator.objects.restrict(self.user, "view")
                .filter(serial=serial)
                .select_related("organisation")
                .first()
            )
            if found is not None and not org_within_scope(self.user, found.organisation):
                found = None
            self.concentrators[serial] = found
        return self.concentrators[serial]

    def _organisation(self, code: str) -> Organisation | None:
        if code not in self.organisations:
            found = Organisation.objects.filter(code=code).first()
            if found is not None and not org_within_scope(self.user, found):
                found = None
            self.organisations[code] = found
        return self.organisations[code]


class _RowFailed(Exception):
    pass
