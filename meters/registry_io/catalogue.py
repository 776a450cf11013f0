"""The meter-model catalogue as a file: one row per channel, in CSV, XLSX or XML.

Rows carry their meter model (manufacturer + model, with protocol, description and owning
organisation repeated on every row of that model) and one channel (kind + OBIS code and the
rest). A model without channels is one row with empty `obis` and `kind`. The import creates
or updates meter models (by manufacturer and model) and their channels (by kind and OBIS
code); channels missing from the file are kept. As for meters: every row is checked first,
then all of it is applied in one transaction, or nothing. Whatever lies outside the user's
scope is reported as unknown.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

from accounts import audit
from accounts.actions import OutOfScope, save_object
from accounts.models import Organisation
from accounts.scoping import org_within_scope

from .. import obis as obis_codes
from ..choices import Accumulation, ChannelKind, Protocol, default_accumulation
from ..models import Channel, MeterModel
from .columns import ENUM, INT, REF, TEXT, CellError, Column, parse_cell
from .formats import (
    CONTENT_TYPES,
    FORMATS,
    FileError,
    Layout,
    Record,
    csv_stream,
    read_records,
    xlsx_write,
    xml_stream,
)
from .importer import ImportResult, RowError, guess_format, limits, read_bounded

CATALOGUE_COLUMNS: list[Column] = [
    Column("manufacturer", TEXT, required=True),
    Column("model", TEXT, required=True),
    Column("protocol", ENUM, choices=Protocol),
    Column("description", TEXT),
    Column("organisation", REF),
    Column("obis", TEXT, required=True),
    Column("name", TEXT),
    Column("unit", TEXT),
    Column("scaler", INT),
    Column("kind", ENUM, choices=ChannelKind, required=True),
    Column("profile_obis", TEXT),
    Column("accumulation", ENUM, choices=Accumulation),
]
MODEL_COLUMNS = ("protocol", "description", "organisation")
SCALER_RANGE = (-9, 9)


def catalogue_value(row: tuple[MeterModel, Channel | None], column: Column) -> Any:
    """The value of `column` for one (meter model, channel or None) row."""
    model, channel = row
    name = column.name
    if name == "manufacturer":
        return model.manufacturer
    if name == "model":
        return model.name
    if name == "organisation":
        return model.organisation.code
    if name in ("protocol", "description"):
        return getattr(model, name)
    return None if channel is None else getattr(channel, name)


CATALOGUE = Layout(
    by_name={c.name: c for c in CATALOGUE_COLUMNS},
    export_columns=CATALOGUE_COLUMNS,
    required=[c.name for c in CATALOGUE_COLUMNS if c.required],
    xml_root="catalogue",
    xml_row="channel",
    sheet="catalogue",
    value=catalogue_value,
    plural="channel rows",
)


# --- export --------------------------------------------------------------------------------


def catalogue_models(user):
    """Meter models the user may see, by manufacturer and model, channels by kind and OBIS."""
    channels = Channel.objects.order_by("kind", "obis", "pk")
    return (
        MeterModel.objects.restrict(user, "view")
        .select_related("organisation")
        .prefetch_related(Prefetch("channels", queryset=channels))
        .order_by("manufacturer", "name")
    )


def catalogue_rows(models):
    for model in models:
        channels = list(model.channels.all())
        if not channels:
            yield model, None
        for channel in channels:
            yield model, channel


class _Counted:
    def __init__(self, iterable):
        self.iterable, self.count = iterable, 0

    def __iter__(self):
        for item in self.iterable:
            self.count += 1
            yield item


def write_catalogue(user, fmt: str, target) -> int:
    """Write the user's catalogue to a file (CSV/XML: text file; XLSX: binary); returns rows."""
    if fmt not in FORMATS:
        raise FileError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    rows = _Counted(catalogue_rows(catalogue_models(user)))
    if fmt == "xlsx":
        xlsx_write(rows, target, CATALOGUE)
    else:
        for chunk in (csv_stream if fmt == "csv" else xml_stream)(rows, CATALOGUE):
            target.write(chunk)
    return rows.count


def record_catalogue_export(user, fmt: str, rows: int) -> None:
    audit.record(
        "export",
        user=user,
        changes={"what": "catalogue", "format": fmt, "rows": rows},
        detail=f"meter model catalogue export ({fmt}): {rows} rows",
    )


def catalogue_export_response(user, fmt: str):
    """An HTTP response with the user's catalogue file; writes the 'export' audit row."""
    if fmt not in FORMATS:
        raise FileError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    rows = list(catalogue_rows(catalogue_models(user)))  # a catalogue is small
    record_catalogue_export(user, fmt, len(rows))
    filename = f"meter-models-{timezone.localdate().isoformat()}.{fmt}"
    if fmt == "xlsx":
        target = tempfile.TemporaryFile()
        xlsx_write(rows, target, CATALOGUE)
        target.seek(0)
        return FileResponse(
            target, as_attachment=True, filename=filename, content_type=CONTENT_TYPES[fmt]
        )
    stream = csv_stream if fmt == "csv" else xml_stream
    response = StreamingHttpResponse(
        (chunk.encode("utf-8") for chunk in stream(rows, CATALOGUE)),
        content_type=CONTENT_TYPES[fmt],
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- import --------------------------------------------------------------------------------


@dataclass
class CatalogueResult(ImportResult):
    """As for meters; `created`/`updated`/`unchanged` name models and channels alike."""

    models: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    channels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))

    def count(self, what: str, outcome: str, label: str) -> None:
        getattr(self, outcome).append(label)
        (self.models if what == "model" else self.channels)[outcome] += 1

    def summary(self) -> str:
        if self.errors:
            return super().summary()
        verb = "would be" if self.dry_run else "were"
        m, c = self.models, self.channels
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged ({verb} applied): meter models "
            f"{m['created']}/{m['updated']}/{m['unchanged']}, channels "
            f"{c['created']}/{c['updated']}/{c['unchanged']} (created/updated/unchanged)"
        )

    def as_dict(self) -> dict:
        return {**super().as_dict(), "what": "catalogue", "models": self.models,
                "channels": self.channels}  # fmt: skip


_COUNTS = ("created", "updated", "unchanged")


def error_text(error: RowError) -> str:
    """One error as a line of text, e.g. "line 3: obis: not an OBIS code: '1-0:1.8'"."""
    return f"{error.where}: {error.message}"


def import_catalogue(fileobj, fmt: str | None, user, *, dry_run: bool = False):
    """Validate every row, then (unless dry run or any error) apply all in one transaction."""
    result = CatalogueResult(fmt=fmt or "", dry_run=dry_run)
    max_bytes, max_rows, max_unpacked = limits()
    try:
        fmt = result.fmt = guess_format(getattr(fileobj, "name", "") or "", fmt)
        data = read_bounded(fileobj, max_bytes)
        records = read_records(
            data, fmt, max_rows=max_rows, max_unpacked=max_unpacked, layout=CATALOGUE
        )
    except FileError as exc:
        result.errors.append(RowError(None, "file", "", str(exc)))
        return result
    result.rows = len(records)
    if not records:
        result.errors.append(RowError(None, "file", "", "the file holds no meter models"))
        return result
    plan = _Planner(user, fmt).plan(records, result)
    if result.errors or dry_run:
        return result
    try:
        with transaction.atomic():
            for obj, before in plan:
                if isinstance(obj, Channel):
                    obj.meter_model = obj.meter_model  # the model may have been saved just now
                save_object(obj, acting_user=user, before=before)
            audit.record(
                "import",
                user=user,
                changes={"what": "catalogue", "format": fmt, "rows": result.rows,
                         "models": result.models, "channels": result.channels},
                detail=f"meter model catalogue import ({fmt}): {result.summary()}",
            )  # fmt: skip
    except OutOfScope as exc:
        result.errors.append(RowError(None, "file", "", str(exc)))
        return result
    result.applied = True
    return result


class _RowFailed(Exception):
    pass


@dataclass
class _Model:
    """What the import does to one meter model: planned once, at its first row."""

    instance: MeterModel | None  # None: the model cannot be used (an error says why)
    before: dict | None  # audit snapshot; None for a new model
    line: int
    values: dict[str, Any]  # the model columns given at its first row
    changeable: bool
    channels: dict[tuple[str, str], Channel] = field(default_factory=dict)


class _Planner:
    def __init__(self, user, fmt: str):
        self.user, self.fmt = user, fmt
        self.models: dict[tuple[str, str], _Model] = {}
        self.organisations: dict[str, Organisation | None] = {}

    def where(self, record: Record) -> str:
        return f"line {record.line}" if self.fmt == "csv" else record.where

    def plan(self, records: list[Record], result: CatalogueResult) -> list[tuple[Any, Any]]:
        plan: list[tuple[Any, Any]] = []
        seen: dict[tuple[str, str, str, str], int] = {}
        for record in records:
            errors: list[str] = []
            raw = record.values
            label = f"{raw.get('manufacturer') or ''} {raw.get('model') or ''}".strip()
            try:
                values = self._parse(record, errors)
                label = f"{values['manufacturer']} {values['model']}"
                self._row(record, values, seen, errors, result, plan)
            except _RowFailed:
                pass
            for message in errors:
                result.errors.append(RowError(record.line, self.where(record), label, message))
        return plan

    # Cells -------------------------------------------------------------------------------

    def _parse(self, record: Record, errors: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, raw in record.values.items():
            try:
                values[name] = parse_cell(CATALOGUE.by_name[name], raw)
            except CellError as exc:
                errors.append(f"{name}: {exc}")
        for name in ("manufacturer", "model"):
            if name in values and not values[name]:
                errors.append(f"{name}: a value is required")
        obis, kind = values.get("obis") or "", values.get("kind") or ""
        if "kind" in values or "obis" in values:
            if obis and not kind and "kind" not in [e.split(":")[0] for e in errors]:
                errors.append("kind: a value is required for a channel")
            if kind and not obis:
                errors.append("obis: a value is required for a channel")
        for name in ("obis", "profile_obis"):
            if values.get(name):
                try:
                    values[name] = obis_codes.normalise(values[name])
                except ValueError as exc:
                    errors.append(f"{name}: {exc}")
        scaler = values.get("scaler")
        low, high = SCALER_RANGE
        if scaler is not None and not low <= scaler <= high:
            errors.append(f"scaler: {scaler} is outside {low}..{high}")
        if errors:
            raise _RowFailed
        return values

    # Rows --------------------------------------------------------------------------------

    def _row(self, record, values, seen, errors, result, plan) -> None:
        key = (values["manufacturer"], values["model"])
        model = self.models.get(key)
        if model is None:
            model = self.models[key] = self._plan_model(record, key, values, errors)
            if model.instance is not None:
                self._count_model(model, key, result, plan, errors)
        else:
            for name in MODEL_COLUMNS:
                if name in values and name in model.values and values[name] != model.values[name]:
                    errors.append(
                        f"{name}: {values[name]!r} differs from {model.values[name]!r} "
                        f"given for the same meter model at line {model.line}"
                    )
        if errors or model.instance is None or not values.get("obis"):
            raise _RowFailed
        kind, obis = values["kind"], values["obis"]
        ident = (*key, kind, obis)
        if ident in seen:
            errors.append(
                f"channel {kind} {obis} of meter model {key[0]!r} {key[1]!r} appears twice "
                f"(first at line {seen[ident]})"
            )
            raise _RowFailed
        seen[ident] = record.line
        self._plan_channel(model, key, values, errors, result, plan)

    def _plan_model(self, record, key, values, errors) -> _Model:
        manufacturer, name = key
        given = {n: values[n] for n in MODEL_COLUMNS if n in values}
        found = (
            MeterModel.objects.filter(manufacturer=manufacturer, name=name)
            .select_related("organisation")
            .first()
        )
        failed = _Model(None, None, record.line, given, False)
        if found is not None:
            visible = MeterModel.objects.restrict(self.user, "view").filter(pk=found.pk)
            if not visible.exists():
                errors.append(
                    f"unknown meter model {manufacturer!r} {name!r} "
                    "(not within your organisation's scope)"
                )
                return failed
            changeable = MeterModel.objects.restrict(self.user, "change").filter(pk=found.pk)
            model = _Model(found, audit.snapshot(found), record.line, given, changeable.exists())
            model.channels = {(c.kind, c.obis): c for c in found.channels.all()}
        else:
            if not self.user.has_perm("meters.add_metermodel"):
                errors.append("you may not add meter models")
                return failed
            found = MeterModel(manufacturer=manufacturer, name=name)
            model = _Model(found, None, record.line, given, True)
        instance = model.instance
        code = values.get("organisation")
        if code:
            if instance.organisation_id and code == instance.organisation.code:
                pass  # unchanged, even where the user may only read it
            else:
                organisation = self._organisation(code)
                if organisation is None:
                    errors.append(f"unknown organisation {code!r}")
                else:
                    instance.organisation = organisation
        elif model.before is None:
            own = self.user.organisation
            if own is None or not org_within_scope(self.user, own, "add"):
                errors.append("organisation: needed for a new meter model")
            else:
                instance.organisation = own
        if "protocol" in values:
            instance.protocol = values["protocol"] or Protocol.DLMS
        if "description" in values:
            instance.description = values["description"]
        if errors:
            return failed
        try:
            instance.full_clean(exclude=["organisation"], validate_unique=False)
        except ValidationError as exc:
            _add_messages(errors, exc, {"name": "model"})
            return failed
        return model

    def _count_model(self, model: _Model, key, result, plan, errors) -> None:
        label = f"{key[0]} {key[1]}"
        if model.before is None:
            result.count("model", "created", label)
        elif audit.snapshot(model.instance) == model.before:
            result.count("model", "unchanged", label)
            return
        elif not (model.changeable and self.user.has_perm("meters.change_metermodel")):
            errors.append(_read_only(model.instance))
            model.instance = None
            return
        else:
            result.count("model", "updated", label)
        plan.append((model.instance, model.before))

    def _plan_channel(self, model: _Model, key, values, errors, result, plan) -> None:
        kind, obis = values["kind"], values["obis"]
        channel = model.channels.get((kind, obis))
        before = None
        if channel is None:
            if not self.user.has_perm("meters.add_channel"):
                errors.append("you may not add channels")
                raise _RowFailed
            channel = Channel(meter_model=model.instance, kind=kind, obis=obis)
            if not values.get("name"):
                errors.append("name: a value is required for a new channel")
        else:
            before = audit.snapshot(channel)
        if "name" in values and not values["name"]:
            if before is not None:
                errors.append("name: a value is required")
        elif "name" in values:
            channel.name = values["name"]
        if "unit" in values:
            channel.unit = values["unit"]
        if "scaler" in values:
            channel.scaler = values["scaler"] or 0
        if "profile_obis" in values:
            channel.profile_obis = values["profile_obis"]
        if "accumulation" in values:
            # Blank: the OBIS code's default (set on save).
            channel.accumulation = values["accumulation"] or default_accumulation(obis)
        if errors:
            raise _RowFailed
        try:
            channel.full_clean(
                exclude=["meter_model"], validate_unique=False, validate_constraints=False
            )
        except ValidationError as exc:
            _add_messages(errors, exc, {})
            raise _RowFailed from None
        label = f"{key[0]} {key[1]} {kind} {obis}"
        if before is not None and audit.snapshot(channel) == before:
            result.count("channel", "unchanged", label)
            return
        if model.before is not None and not model.changeable:
            errors.append(_read_only(model.instance))
            raise _RowFailed
        if before is not None and not self.user.has_perm("meters.change_channel"):
            errors.append("you may not change channels")
            raise _RowFailed
        result.count("channel", "created" if before is None else "updated", label)
        plan.append((channel, before))

    def _organisation(self, code: str) -> Organisation | None:
        """The organisation if the user may write there; otherwise None (unknown)."""
        if code not in self.organisations:
            found = Organisation.objects.filter(code=code).first()
            if found is not None and not org_within_scope(self.user, found, "change"):
                found = None
            self.organisations[code] = found
        return self.organisations[code]


def _read_only(model: MeterModel) -> str:
    return (
        f"meter model {model.manufacturer!r} {model.name!r} belongs to "
        f"{model.organisation.code!r}: you may use it but not change it"
    )


def _add_messages(errors: list[str], exc: ValidationError, renames: dict[str, str]) -> None:
    for name, messages in exc.message_dict.items():
        column = renames.get(name, name)
        prefix = "" if column == "__all__" else f"{column}: "
        errors.extend(prefix + message for message in messages)
