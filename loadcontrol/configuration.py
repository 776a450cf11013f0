"""Configuration management's business operations: set or clear what a meter model or a
meter should hold, send one section now, re-apply what drifted, read a meter's configuration.

Every change to a meter is a command through the queue (``collection.commands``), confirmed
by its read-back; the desired values are checked by ``meters.configuration`` before they are
kept, so nothing half-valid is stored or sent. Each operation is audited.
"""

from __future__ import annotations

import json
from collections import defaultdict

from django.db import transaction

from accounts import audit
from accounts.scoping import org_within_scope
from collection.commands import actions as commands
from collection.commands.kinds import PRIORITY_LOW, PRIORITY_NORMAL, Kind
from meters import configuration as config
from meters.models import DesiredConfiguration, Meter, MeterModel

from . import drift
from .actions import CHANGE_CONFIGURATION, EXPIRY, NotAllowed

READ_SECTIONS = [s for s in config.SECTIONS if s != config.CLOCK_SYNC]


def may_configure(user) -> bool:
    """Whether `user` may change desired configuration and send it (engineers, admins)."""
    return user.has_perm(CHANGE_CONFIGURATION) and user.has_perm("collection.add_metercommand")


def _check(user, organisation) -> None:
    if not may_configure(user):
        raise NotAllowed("Your role may not change meter configuration.")
    if not org_within_scope(user, organisation, "change"):
        raise NotAllowed("You may not configure meters of this organisation.")


def set_desired(
    target: Meter | MeterModel, section: str, value, *, acting_user
) -> DesiredConfiguration:
    """Keep `value` as what `target` (a meter model: all its meters; a meter: this one)
    should hold for `section`. ConfigError when it does not fit; NotAllowed."""
    _check(acting_user, target.organisation)
    cleaned = config.clean(section, value)
    owner = {"meter": target} if isinstance(target, Meter) else {"meter_model": target}
    with transaction.atomic():
        row, _created = DesiredConfiguration.objects.update_or_create(
            **owner,
            section=section,
            defaults={
                "value": cleaned,
                "updated_by": acting_user,
                "organisation_id": target.organisation_id,
            },
        )
        audit.record(
            "set_desired_configuration",
            user=acting_user,
            obj=target,
            changes={"section": section, **cleaned},
        )
    return row


def clear_desired(target: Meter | MeterModel, section: str, *, acting_user) -> int:
    """Stop managing `section` for `target` (a meter falls back to its model's)."""
    _check(acting_user, target.organisation)
    owner = {"meter": target} if isinstance(target, Meter) else {"meter_model": target}
    with transaction.atomic():
        deleted, _ = DesiredConfiguration.objects.filter(**owner, section=section).delete()
        if deleted:
            audit.record(
                "clear_desired_configuration",
                user=acting_user,
                obj=target,
                changes={"section": section},
            )
    return deleted


def _kind_and_parameters(section: str, value: dict) -> tuple[str, dict]:
    kind = drift.KIND_OF_SECTION[section]
    return kind, ({} if section == config.CLOCK_SYNC else value)


def plan_reapply(meters: list[Meter], *, sections=None, only_drifting=True) -> dict:
    """What re-applying would queue: {(kind, parameters as JSON): [meters]} for each desired
    section (of `sections`, default all) that differs or was never read (`only_drifting`),
    or every desired one. Nothing is queued."""
    states = drift.states_of(meters)
    groups: dict[tuple[str, str], list[Meter]] = defaultdict(list)
    for meter in meters:
        for s in states[meter.pk]:
            if not s.state or (sections and s.section not in sections):
                continue
            if only_drifting and s.state not in (drift.DIFFERS, drift.UNREAD):
                continue
            kind, parameters = _kind_and_parameters(s.section, s.desired)
            groups[(kind, json.dumps(parameters, sort_keys=True))].append(meter)
    return groups


def reapply(
    meters: list[Meter],
    *,
    acting_user,
    sections=None,
    only_drifting=True,
    reason="",
    target: dict | None = None,
) -> int:
    """Queue, for each meter, the command of every desired section (of `sections`, default
    all) that differs or was never read (`only_drifting`), or of every desired one; meters
    that need the same value share one bulk insert. Audited (with how the meters were
    chosen, `target`). Returns the commands queued."""
    organisations = {m.organisation_id for m in meters}
    for meter in {m.organisation_id: m for m in meters}.values():
        _check(acting_user, meter.organisation)
    groups = plan_reapply(meters, sections=sections, only_drifting=only_drifting)
    queued = 0
    with transaction.atomic():
        for (kind, parameters), group in groups.items():
            commands.queue_commands(
                group,
                kind,
                acting_user=acting_user,
                reason=reason or "re-apply the desired configuration",
                parameters=json.loads(parameters),
                priority=PRIORITY_LOW,
                expires_in=EXPIRY * 24,
            )
            queued += len(group)
        audit.record(
            "reapply_configuration",
            user=acting_user,
            changes={
                "meters": len(meters),
                "organisations": len(organisations),
                "commands": queued,
                "sections": sorted(sections or []),
                "only_drifting": only_drifting,
                **({"target": target.get("label", "")} if target else {}),
            },
            detail=reason,
        )
    return queued


def apply_section(meter: Meter, section: str, *, acting_user, reason: str = ""):
    """Send the meter's desired `section` now (one command). NotAllowed; ValueError when
    nothing is desired for it."""
    _check(acting_user, meter.organisation)
    value = drift.desired_of([meter])[meter.pk].get(section)
    if value is None:
        raise ValueError(f"nothing is desired for {config.LABELS[section].lower()}")
    kind, parameters = _kind_and_parameters(section, value[0])
    return commands.queue_command(
        meter,
        kind,
        acting_user=acting_user,
        reason=reason or f"apply the desired {config.LABELS[section].lower()}",
        parameters=parameters,
        priority=PRIORITY_NORMAL,
        expires_in=EXPIRY,
    )


def read_configuration(meters: list[Meter], *, acting_user, reason: str = "") -> int:
    """Queue a configuration read for each meter (anyone who may queue commands)."""
    if not acting_user.has_perm("collection.add_metercommand"):
        raise NotAllowed("Your role may not send commands.")
    for meter in {m.organisation_id: m for m in meters}.values():
        if not org_within_scope(acting_user, meter.organisation, "add"):
            raise NotAllowed("You may not command meters of this organisation.")
    commands.queue_commands(
        meters,
        Kind.READ_CONFIGURATION,
        acting_user=acting_user,
        reason=reason or "read the configuration",
        parameters={"sections": READ_SECTIONS},
        priority=PRIORITY_LOW,
        expires_in=EXPIRY,
    )
    return len(meters)
