"""Alarms on something of the system's own -- neither a meter nor a line -- such as a
scheduled report whose mail could not be delivered (reports/delivery.py).

The rules are the organisation's like any alarm's: every active rule of the organisation (or
one above it with `subtree`) whose kinds include the alarm's kind and that is not limited to
a grid node or a meter model (those cover meters; a report's mail is neither). Each such
alarm is raised once for its `reference` (a failed delivery is one alarm, never counted into
another's), shown, pushed, notified, acknowledged and cleared like every other alarm; the
system clears it itself when its condition ends (`clear_system_alarms`: the next good
delivery of the same schedule and recipient, or of the same exchange target).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from .actions import _queue_notifications, clear_by_system
from .consumers import publish_alarm
from .models import OPEN_STATES, Alarm, AlarmRule


def covering_rules(organisation):
    """The active rules of the organisation and of those above it that reach down to it."""
    ancestors = [int(pk) for pk in organisation.path.strip("/").split("/") if pk]
    return AlarmRule.objects.filter(
        Q(organisation_id=organisation.pk) | Q(organisation_id__in=ancestors, subtree=True),
        active=True,
        meter_model__isnull=True,
    )


def rules_for(organisation, kind: str) -> list[AlarmRule]:
    """The rules that raise a system alarm of `kind` for `organisation`."""
    rules = covering_rules(organisation).filter(grid_node__isnull=True).order_by("pk")
    return [rule for rule in rules if kind in rule.kinds]


def raise_system_alarm(
    organisation, kind: str, *, reference: str, link: str = "", at: datetime
) -> list[Alarm]:
    """Raise the alarm of each covering rule on `reference`, once: an alarm of this kind on
    this reference raised before (open or cleared) is not raised again. Returns the new
    alarms (none when no rule of the organisation asks for this kind)."""
    reference = reference[:200]
    if not reference:
        raise ValueError("a system alarm needs a reference")
    with transaction.atomic():
        if Alarm.objects.filter(organisation=organisation, kind=kind, reference=reference).exists():
            return []
        created = [
            Alarm.objects.create(
                rule=rule,
                organisation=organisation,
                kind=kind,
                severity=rule.severity,
                count=1,
                first_event_at=at,
                last_event_at=at,
                reference=reference,
                link=link[:200],
            )
            for rule in rules_for(organisation, kind)
        ]
        for alarm in created:
            publish_alarm(alarm)
        _queue_notifications(created)
    return created


def clear_system_alarms(
    organisation,
    kind: str,
    *,
    references=(),
    reference_prefix: str = "",
    at: datetime,
    comment: str,
    by_event: str,
) -> list[Alarm]:
    """Clear the organisation's open system alarms of `kind` on any of `references` or on a
    reference starting with `reference_prefix`, through the engine's normal clear path
    (`clear_by_system`: locked, audited as the system's, pushed)."""
    match = Q(reference__in=[r[:200] for r in references])
    if reference_prefix:
        match |= Q(reference__startswith=reference_prefix)
    alarms = Alarm.objects.filter(
        match, organisation=organisation, kind=kind, meter__isnull=True, line__isnull=True,
        state__in=OPEN_STATES, first_event_at__lte=at,
    )  # fmt: skip
    return clear_by_system(alarms, at=at, comment=comment, by_event=by_event)
