"""The alarm rules every organisation starts with, so a new utility hears of its outages at once.

`install_default_rules(organisation)` runs for each organisation when it is created (through
`accounts.actions.create_organisation`, which calls the steps in settings'
`AMI_ORGANISATION_SETUP`) and, once, for every organisation that existed before (data
migration). The rules cover the organisation's *own* meters (`subtree=False`): every
organisation of a tree has its own set, which its administrators may tune or switch off,
and a meter is never counted by two default rules of one kind. A kind an active rule of the
organisation or above it already covers for the whole subtree is left out, so installing
defaults never doubles an alarm someone already configured. Installing twice adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from accounts import audit

from .events import EventKind
from .models import AlarmRule, Severity

K = EventKind


@dataclass(frozen=True)
class DefaultRule:
    key: str
    name: str
    kinds: tuple[str, ...]
    severity: int


DEFAULT_RULES = (
    DefaultRule("power_failure", "Power failure", (K.POWER_FAILURE,), Severity.MAJOR),
    DefaultRule(
        "tamper",
        "Tamper: cover opened or magnetic field",
        (K.COVER_OPEN, K.TERMINAL_COVER_OPEN, K.MAGNETIC_TAMPER),
        Severity.CRITICAL,
    ),
    DefaultRule(
        "communication_lost",
        "Communication lost (unreachable)",
        (K.METER_UNREACHABLE,),
        Severity.MINOR,
    ),  # fmt: skip
    DefaultRule(
        "line_down",
        "Shared line or concentrator down",
        (K.LINE_DOWN,),
        Severity.MAJOR,
    ),  # fmt: skip
    DefaultRule("clock_drift", "Clock drift over limit", (K.CLOCK_DRIFT,), Severity.MINOR),
    DefaultRule(
        "voltage",
        "Voltage out of band",
        (K.VOLTAGE_OUT_OF_BAND, K.VOLTAGE_SAG, K.VOLTAGE_SWELL, K.PHASE_LOSS),
        Severity.MAJOR,
    ),
    DefaultRule(
        "report_delivery_failed",
        "Scheduled report not delivered",
        (K.REPORT_DELIVERY_FAILED,),
        Severity.MAJOR,
    ),
    DefaultRule(
        "consumption_while_disconnected",
        "Consumption while disconnected",
        (K.CONSUMPTION_WHILE_DISCONNECTED,),
        Severity.CRITICAL,
    ),
)


def missing_default_rules(rules, organisation) -> list[dict]:
    """The default rules `organisation` lacks, as field values for `rules.create(**values)`.

    `rules` is the AlarmRule manager (the data migration passes its historical model's).
    """
    ancestors = [int(pk) for pk in organisation.path.strip("/").split("/") if pk]
    own = rules.filter(organisation_id=organisation.pk)
    have = set(own.exclude(default_key="").values_list("default_key", flat=True))
    covering = rules.filter(
        Q(organisation_id=organisation.pk) | Q(organisation_id__in=ancestors, subtree=True),
        active=True,
        grid_node__isnull=True,
        meter_model__isnull=True,
    )
    covered = {kind for kinds in covering.values_list("kinds", flat=True) for kind in kinds}
    missing = []
    for default in DEFAULT_RULES:
        kinds = [k.value for k in default.kinds if k not in covered]
        if default.key not in have and kinds:
            missing.append(
                {
                    "organisation_id": organisation.pk,
                    "name": default.name,
                    "kinds": kinds,
                    "severity": int(default.severity),
                    "subtree": False,
                    "default_key": default.key,
                }
            )
    return missing


def install_default_rules(organisation, *, acting_user=None) -> list[AlarmRule]:
    """Give the organisation the default rules it lacks; returns the rules created."""
    with transaction.atomic():
        created = [
            AlarmRule.objects.create(**values)
            for values in missing_default_rules(AlarmRule.objects, organisation)
        ]
        if created:
            audit.record(
                "install_default_alarm_rules",
                user=acting_user,
                obj=organisation,
                changes={"rules": [r.name for r in created]},
            )
    return created
