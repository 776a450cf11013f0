"""One organisation's configuration as a file, to move it between systems (docs/operations.md,
"Moving configuration between systems").

Sections, in dependency order: the grid (nodes by code), the meter-model catalogue (models by
manufacturer + name, channels by model + kind + OBIS), read jobs and alarm rules (by name).
Rows refer to each other by those natural keys, never by database ids, so a file made on one
system applies to another. The meters themselves move with `export_registry` /
`import_registry` (their own format, with its rules for secrets); a read job's explicit meter
list is kept as serials and needs the meters to be there first.

An import adds what is missing and updates what exists (matched by key), never deletes, and
is all or nothing: every problem in the file is reported and nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models, transaction

from accounts import audit
from collection.scheduling import sync_schedule

FORMAT = "ami-configuration"
VERSION = 1


@dataclass(frozen=True)
class Section:
    name: str
    model: str
    key: tuple[str, ...]
    refs: dict[str, str] = field(default_factory=dict)  # foreign key field -> section
    m2m: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (model, key field)
    exclude: tuple[str, ...] = ()
    per_organisation: bool = True
    order_by: tuple[str, ...] = ("pk",)


SECTIONS = (
    Section("grid", "meters.GridNode", ("code",), refs={"parent": "grid"}, exclude=("path",),
            order_by=("path",)),
    Section("meter_models", "meters.MeterModel", ("manufacturer", "name"), per_organisation=False),
    Section("channels", "meters.Channel", ("meter_model", "kind", "obis"),
            refs={"meter_model": "meter_models"}, per_organisation=False),
    Section("read_jobs", "collection.ReadJob", ("name",),
            refs={"grid_node": "grid", "meter_model": "meter_models"},
            m2m={"meters": ("meters.Meter", "serial")}, exclude=("periodic_task",)),
    Section("alarm_rules", "meters.AlarmRule", ("name",),
            refs={"grid_node": "grid", "meter_model": "meter_models"}),
)  # fmt: skip
BY_NAME = {s.name: s for s in SECTIONS}


class ConfigError(Exception):
    """The file cannot be applied; `problems` says every reason, each with its place."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
        self.problems = problems


def _model(section: Section) -> type[models.Model]:
    return apps.get_model(section.model)


def _fields(section: Section) -> list[models.Field]:
    skip = {"id", "organisation", *section.exclude}
    return [
        f for f in _model(section)._meta.concrete_fields if f.name not in skip and not f.primary_key
    ]


def _plain(f: models.Field, value: Any) -> Any:
    if value is None or isinstance(f, models.JSONField):
        return value
    if isinstance(value, (bool, int, str)):
        return value
    return f.value_to_string(_Holder(f.attname, value))


class _Holder:
    def __init__(self, attname: str, value: Any):
        setattr(self, attname, value)


# --- export ----------------------------------------------------------------------------------


def _queryset(section: Section, organisation):
    manager = _model(section)._default_manager
    if section.name == "meter_models":
        return (
            manager.filter(_used_models(organisation)).distinct().order_by("manufacturer", "name")
        )
    if section.name == "channels":
        models_used = _model(BY_NAME["meter_models"])._default_manager.filter(
            _used_models(organisation)
        )
        return manager.filter(meter_model__in=models_used).order_by(
            "meter_model__manufacturer", "meter_model__name", "kind", "obis"
        )
    return manager.filter(organisation=organisation).order_by(*section.order_by)


def _used_models(organisation) -> models.Q:
    """The organisation's own meter models and the shared ones its meters, jobs and rules use."""
    used = models.Q(organisation=organisation)
    for model, field_name in (
        ("meters.Meter", "meter_model"),
        ("collection.ReadJob", "meter_model"),
        ("meters.AlarmRule", "meter_model"),
    ):
        ids = apps.get_model(model)._default_manager.filter(organisation=organisation)
        used |= models.Q(pk__in=ids.values(f"{field_name}_id"))
    return used


def _key_of(section: Section, obj) -> list:
    key = []
    for name in section.key:
        if name in section.refs:
            target = getattr(obj, name)
            key.extend(_key_of(BY_NAME[section.refs[name]], target))
        else:
            key.append(getattr(obj, name))
    return key


def export_configuration(organisation) -> dict:
    """The organisation's configuration as a JSON-ready document."""
    sections: dict[str, list[dict]] = {}
    for section in SECTIONS:
        rows = []
        for obj in _queryset(section, organisation):
            row: dict[str, Any] = {}
            for f in _fields(section):
                if f.name in section.refs:
                    target = getattr(obj, f.name)
                    row[f.name] = (
                        None if target is None else _key_of(BY_NAME[section.refs[f.name]], target)
                    )
                else:
                    row[f.name] = _plain(f, getattr(obj, f.attname))
            for name, (_target, key_field) in section.m2m.items():
                row[name] = sorted(getattr(obj, name).values_list(key_field, flat=True))
            rows.append(row)
        sections[section.name] = rows
    return {
        "format": FORMAT,
        "version": VERSION,
        "organisation": organisation.code,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sections": sections,
    }


# --- import ----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def as_text(self) -> str:
        names = [s.name for s in SECTIONS if s.name in self.created]
        return "\n".join(
            f"{n}: {self.created[n]} created, {self.updated[n]} updated, "
            f"{self.unchanged[n]} unchanged"
            for n in names
        )


class _DryRun(Exception):
    pass


def read_document(text: str | bytes) -> dict:
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not a JSON document: {exc}"]) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError([f"not an {FORMAT} file (its 'format' must say so)"])
    if document.get("version") != VERSION:
        raise ConfigError([f"version {document.get('version')!r} is not {VERSION}"])
    if not isinstance(document.get("sections"), dict):
        raise ConfigError(["'sections' must be an object"])
    unknown = set(document["sections"]) - set(BY_NAME)
    if unknown:
        raise ConfigError([f"unknown sections: {', '.join(sorted(unknown))}"])
    return document


def import_configuration(document: dict, organisation, *, user=None, dry_run: bool = False):
    """Apply `document` to `organisation`; an ImportReport, or ConfigError naming every problem."""
    importer = _Importer(organisation)
    try:
        with transaction.atomic():
            for section in SECTIONS:
                rows = document["sections"].get(section.name, [])
                if not isinstance(rows, list):
                    raise ConfigError([f"{section.name}: must be a list of rows"])
                importer.apply(section, rows)
            if importer.problems:
                raise ConfigError(importer.problems)
            for job in importer.saved.get("read_jobs", []):
                sync_schedule(job)
            if dry_run:
                raise _DryRun
            audit.record(
                "configuration_imported",
                user=user,
                obj=organisation,
                changes={"created": importer.report.created, "updated": importer.report.updated},
            )
    except _DryRun:
        pass
    return importer.report


class _Importer:
    def __init__(self, organisation):
        self.organisation = organisation
        self.problems: list[str] = []
        self.report = ImportReport()
        self.keys: dict[str, dict[tuple, models.Model]] = {}
        self.saved: dict[str, list[models.Model]] = {}

    def apply(self, section: Section, rows: list) -> None:
        model = _model(section)
        known = self.keys.setdefault(section.name, {})
        for obj in self._existing(section):
            known[tuple(_key_of(section, obj))] = obj
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for number, row in enumerate(rows, start=1):
            place = f"{section.name} row {number}"
            if not isinstance(row, dict):
                self.problems.append(f"{place}: must be an object")
                continue
            try:
                obj, outcome = self._row(section, model, known, row, place)
            except _RowProblem as exc:
                self.problems.extend(str(exc).splitlines())
                continue
            counts[outcome] += 1
            known[tuple(_key_of(section, obj))] = obj
            self.saved.setdefault(section.name, []).append(obj)
        self.report.created[section.name] = counts["created"]
        self.report.updated[section.name] = counts["updated"]
        self.report.unchanged[section.name] = counts["unchanged"]

    def _existing(self, section: Section):
        if section.name == "meter_models":  # the catalogue is shared: keys are global
            return _model(section)._default_manager.all()
        if section.name == "channels":
            return _model(section)._default_manager.select_related("meter_model")
        return _queryset(section, self.organisation)

    def _row(self, section, model, known, row, place):
        unknown = set(row) - {f.name for f in _fields(section)} - set(section.m2m)
        if unknown:
            raise _RowProblem(f"{place}: unknown fields {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        wrong: list[str] = []  # every field's problem, not only the first
        for f in _fields(section):
            if f.name not in row:
                continue
            raw = row[f.name]
            try:
                if f.name in section.refs:
                    values[f.name] = self._resolve(section.refs[f.name], raw, f"{place}, {f.name}")
                elif isinstance(f, models.JSONField):
                    values[f.attname] = raw
                else:
                    values[f.attname] = f.to_python(raw)
            except ValidationError as exc:
                wrong.append(f"{place}, {f.name}: {'; '.join(exc.messages)}")
            except _RowProblem as exc:
                wrong.append(str(exc))
        if wrong:
            raise _RowProblem("\n".join(wrong))
        missing = [k for k in section.key if k not in row]
        if missing:
            raise _RowProblem(f"{place}: the key needs {', '.join(missing)}")
        key = []
        for name in section.key:
            if name in section.refs:
                key.extend(_key_of(BY_NAME[section.refs[name]], values[name]))
            else:
                key.append(values[model._meta.get_field(name).attname])
        obj = known.get(tuple(key))
        outcome = "updated"
        if obj is None:
            obj, outcome = model(), "created"
            if section.per_organisation or section.name == "meter_models":
                obj.organisation = self.organisation
        elif self._not_ours(section, obj):
            # Another organisation's catalogue entry (e.g. the utility's shared models): it is
            # referred to, never changed from here.
            return obj, "unchanged"
        before = {f.attname: getattr(obj, f.attname) for f in _fields(section)}
        for name, value in values.items():
            setattr(obj, name, value)
        try:
            obj.full_clean(exclude=list(section.exclude), validate_unique=False)
        except ValidationError as exc:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise _RowProblem(f"{place} ({'/'.join(map(str, key))}): {details}") from None
        changed = outcome == "created" or any(
            getattr(obj, f.attname) != before[f.attname] for f in _fields(section)
        )
        if changed:
            obj.save()
        m2m_changed = self._m2m(section, obj, row, place)
        if outcome == "updated" and not (changed or m2m_changed):
            outcome = "unchanged"
        return obj, outcome

    def _not_ours(self, section: Section, obj) -> bool:
        if section.name == "meter_models":
            return obj.organisation_id not in (None, self.organisation.pk)
        if section.name == "channels":
            return obj.meter_model.organisation_id not in (None, self.organisation.pk)
        return False

    def _resolve(self, target: str, raw, place: str):
        if raw is None:
            return None
        if not isinstance(raw, list):
            raise _RowProblem(f"{place}: a reference is a list of key values")
        found = self.keys.get(target, {}).get(tuple(raw))
        if found is None:
            raise _RowProblem(f"{place}: {target} {raw} is neither in the file nor on this system")
        return found

    def _m2m(self, section: Section, obj, row: dict, place: str) -> bool:
        changed = False
        for name, (target, key_field) in section.m2m.items():
            if name not in row:
                continue
            wanted = row[name]
            if not isinstance(wanted, list):
                raise _RowProblem(f"{place}, {name}: must be a list")
            related = apps.get_model(target)._default_manager.filter(
                organisation=self.organisation, **{f"{key_field}__in": wanted}
            )
            found = {getattr(r, key_field): r for r in related}
            absent = sorted(set(wanted) - set(found))
            if absent:
                raise _RowProblem(
                    f"{place}, {name}: not on this system (import the registry first): "
                    + ", ".join(map(str, absent[:10]))
                )
            current = set(getattr(obj, name).values_list(key_field, flat=True))
            if current != set(found):
                getattr(obj, name).set(found.values())
                changed = True
        return changed


class _RowProblem(Exception):
    pass
