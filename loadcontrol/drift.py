"""Desired against actual configuration, per meter and section: what the drift report, the
meter page's configuration panel and "re-apply" read.

A meter's desired value of a section is its own (``DesiredConfiguration`` with the meter),
else its meter model's; the actual value is what a command last read back
(``ActualConfiguration``), and for the clock-sync policy the drift measured at the last read
(``CommStatus.clock_drift_s``). A section is *pending* while a command that writes it is
queued or out.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from collection.commands.kinds import CONFIG_KINDS, Kind
from collection.models import CommandState, MeterCommand
from meters import configuration as config
from meters.models import (
    ActualConfiguration,
    CommStatus,
    DesiredConfiguration,
    GridNode,
    Meter,
)

IN_STEP, DIFFERS, UNREAD, PENDING = "in_step", "differs", "unread", "pending"
STATE_LABELS = {
    IN_STEP: "In step",
    DIFFERS: "Differs",
    UNREAD: "Never read",
    PENDING: "Command pending",
}
# The command that puts a section in place (the clock-sync policy: a clock set).
KIND_OF_SECTION = {section: kind for kind, section in CONFIG_KINDS.items()}
KIND_OF_SECTION[config.CLOCK_SYNC] = Kind.SET_CLOCK


STATE_FILTERS = [("drifting", "Differs or never read"), *STATE_LABELS.items()]


def _id(value) -> str:
    """A database id given as text, or "" (anything else, too large included)."""
    text = str(value or "")
    return text if text.isascii() and text.isdigit() and 0 < int(text) < 2**63 else ""


def select(user, meters, params) -> tuple[dict, object]:
    """The drift report's filters (`params`: model, grid, section, state, meter), checked
    (an unknown value is dropped, a grid node outside the user's scope matches nothing), and
    `meters` (already in the user's scope) narrowed by model, grid node and serial."""
    chosen = {
        "model": _id(params.get("model")),
        "grid": _id(params.get("grid")),
        "section": params.get("section", "") if params.get("section") in config.SECTIONS else "",
        "state": params.get("state", "") if params.get("state") in dict(STATE_FILTERS) else "",
        "meter": str(params.get("meter", "")).strip()[:64],
    }
    if chosen["model"]:
        meters = meters.filter(meter_model_id=chosen["model"])
    if chosen["grid"]:
        node = GridNode.objects.restrict(user, "view").filter(pk=chosen["grid"]).first()
        meters = meters.filter(service_point__path__startswith=node.path) if node else meters.none()
    if chosen["meter"]:
        meters = meters.filter(serial__icontains=chosen["meter"])
    return chosen, meters.select_related("meter_model").order_by("serial")


@dataclass
class SectionState:
    section: str
    desired: dict | None  # None: nothing desired for this meter
    source: str  # "meter", "model" or ""
    actual: dict | None
    read_at: datetime | None
    state: str  # one of STATE_LABELS, or "" when nothing is desired

    @property
    def label(self) -> str:
        return config.LABELS[self.section]

    @property
    def enforced_by(self) -> str:
        return config.ENFORCED_BY[self.section]

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, "Not managed")

    @property
    def settings(self) -> list[SettingRow]:
        """Desired against actual setting by setting, by the comparison ``in_step`` uses."""
        return [
            SettingRow(
                s.key.replace("_", " ").capitalize(),
                shown(self.section, s.key, s.desired) if self.desired is not None else "",
                shown(self.section, s.key, s.actual) if self.actual is not None else "",
                s.differs,
                s.compared,
            )
            for s in config.compare(self.section, _ordered(self.section, self.desired), self.actual)
        ]

    @property
    def differing(self) -> list[str]:
        """The labels of the settings that differ (empty unless the section differs)."""
        return [row.label for row in self.settings if row.differs] if self.state == DIFFERS else []


def _ordered(section: str, desired: dict | None) -> dict | None:
    """`desired` with its settings in their canonical order (the database keeps JSON keys in
    its own order), for reading; as stored if it no longer passes the checks."""
    if desired is None:
        return None
    try:
        return {k: desired[k] for k in config.clean(section, desired) if k in desired} | desired
    except config.ConfigError:
        return desired


@dataclass
class SettingRow:
    """One setting as the pages show it (values as text)."""

    label: str
    desired: str
    actual: str
    differs: bool
    compared: bool


def shown(section: str, key: str, value) -> str:
    """A setting's value as text for a page: masks in hexadecimal, a calendar as the
    editor's text, other objects as compact JSON."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if section == config.ALARMS and isinstance(value, int):
        return f"0x{value:08X}"
    if section == config.TOU and key == "calendar" and isinstance(value, dict):
        try:
            return config.tou_text(value)
        except (KeyError, TypeError):
            pass
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return str(value)


def desired_of(meters) -> dict[int, dict[str, tuple[dict, str]]]:
    """{meter id: {section: (value, "meter" | "model")}} for the given meters."""
    meters = list(meters)
    # The models' settings and the meters' own in one query; a meter's own wins.
    by_model = defaultdict(dict)
    own = []
    for row in (
        DesiredConfiguration.objects.filter(
            Q(meter_model_id__in={m.meter_model_id for m in meters}, meter__isnull=True)
            | Q(meter_id__in=[m.pk for m in meters])
        )
        .only("meter_id", "meter_model_id", "section", "value")
        .order_by()
    ):
        if row.meter_id is None:
            by_model[row.meter_model_id][row.section] = (row.value, "model")
        else:
            own.append(row)
    out = {m.pk: dict(by_model.get(m.meter_model_id, {})) for m in meters}
    for row in own:
        out[row.meter_id][row.section] = (row.value, "meter")
    return out


def clock_drifts(meters: list, ids: list[int]) -> dict[int, int | None]:
    """Meter id -> its last clock drift (s), from the meters' comm statuses when they came
    with them (the meter page reads its meter with its comm status: one statement less),
    else in one query."""
    status = Meter.comm_status.related  # the reverse one-to-one: cached per meter if read
    if meters and all(status.is_cached(m) for m in meters):
        return {
            m.pk: row.clock_drift_s
            for m in meters
            if (row := status.get_cached_value(m)) is not None
        }
    return dict(
        CommStatus.objects.filter(meter_id__in=ids)
        .order_by()
        .values_list("meter_id", "clock_drift_s")
    )


def states_of(meters) -> dict[int, list[SectionState]]:
    """Every section's state for each meter, in the order of `config.SECTIONS`. The rows go
    into dictionaries: none of the four queries is sorted (the models' default orderings
    were a fifth of the meter page's configuration panel)."""
    meters = list(meters)
    ids = [m.pk for m in meters]
    desired = desired_of(meters)
    actual = {
        (row.meter_id, row.section): row
        for row in ActualConfiguration.objects.filter(meter_id__in=ids)
        .only("meter_id", "section", "value", "read_at")
        .order_by()
    }
    drift = clock_drifts(meters, ids)
    pending = set()
    for meter_id, kind in (
        MeterCommand.objects.filter(
            meter_id__in=ids,
            state__in=(CommandState.QUEUED, CommandState.SENT),
            kind__in=[*CONFIG_KINDS, Kind.SET_CLOCK],
        )
        .order_by()
        .values_list("meter_id", "kind")
    ):
        pending.add((meter_id, CONFIG_KINDS.get(kind, config.CLOCK_SYNC)))
    out = {}
    for meter_id in ids:
        rows = []
        for section in config.SECTIONS:
            value, source = desired[meter_id].get(section, (None, ""))
            if section == config.CLOCK_SYNC:
                seen = drift.get(meter_id)
                have, read_at = ({"drift_s": seen} if seen is not None else None), None
            else:
                kept = actual.get((meter_id, section))
                have, read_at = (kept.value, kept.read_at) if kept else (None, None)
            if value is None:
                state = ""
            elif (meter_id, section) in pending:
                state = PENDING
            elif have is None:
                state = UNREAD
            else:
                state = IN_STEP if config.in_step(section, value, have) else DIFFERS
            rows.append(SectionState(section, value, source, have, read_at, state))
        out[meter_id] = rows
    return out


def drift_report(meters, *, section: str = "", state: str = "") -> list[tuple]:
    """(meter, its section states) for meters with something desired, filtered by a section
    and its state ("" any; "drifting": differs or never read)."""
    meters = list(meters)
    states = states_of(meters)
    rows = []
    for meter in meters:
        managed = [s for s in states[meter.pk] if s.state]
        if not managed:
            continue
        if section:
            managed_here = [s for s in managed if s.section == section]
            if not managed_here:
                continue
            looked_at = managed_here
        else:
            looked_at = managed
        if state == "drifting" and not any(s.state in (DIFFERS, UNREAD) for s in looked_at):
            continue
        if state and state != "drifting" and not any(s.state == state for s in looked_at):
            continue
        rows.append((meter, states[meter.pk]))
    return rows
