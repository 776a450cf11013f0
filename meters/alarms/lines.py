"""Alarms on a shared line or a concentrator: one alarm for a dead line, not one per meter.

Collection calls `line_down` when a line it reads stops answering and `line_up` when it
answers again (collection/lines.py). The rules are the organisation's like any alarm's: every
active rule of the line's organisation (or one above it with `subtree`) whose kinds include
"line_down"; a rule limited to a grid node covers a concentrator below that node, a rule
limited to a meter model covers no line. One open alarm per (rule, line): a line that stays
down counts its further failures into it (the line's row lock keeps it one).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F

from .actions import _queue_notifications, clear_by_system
from .consumers import publish_alarm
from .events import EventKind
from .models import OPEN_STATES, Alarm, AlarmRule
from .system import covering_rules


def rules_for_line(line) -> list[AlarmRule]:
    """The active rules that raise a line-down alarm for `line`."""
    candidates = covering_rules(line.organisation).select_related("grid_node")
    node = line.concentrator.grid_node if line.concentrator_id else None
    found = []
    for rule in candidates.order_by("pk"):
        if EventKind.LINE_DOWN not in rule.kinds:
            continue
        if rule.grid_node_id is not None and (
            node is None or not node.path.startswith(rule.grid_node.path)
        ):
            continue
        found.append(rule)
    return found


def line_down(line, *, at: datetime) -> list[Alarm]:
    """Raise (or count into) the line's open line-down alarm of each rule covering it.

    The caller holds the line's row locked (`select_for_update`, collection/lines.py), so two
    batches never raise a line's alarm twice."""
    changed, created = [], []
    with transaction.atomic():
        for rule in rules_for_line(line):
            alarm = _open(rule, line)
            if alarm is None:
                alarm = Alarm.objects.create(
                    rule=rule,
                    line=line,
                    organisation_id=line.organisation_id,
                    service_point=None,
                    kind=EventKind.LINE_DOWN,
                    severity=rule.severity,
                    count=1,
                    first_event_at=at,
                    last_event_at=at,
                )
                created.append(alarm)
            else:
                Alarm.objects.filter(pk=alarm.pk).update(count=F("count") + 1, last_event_at=at)
                alarm.refresh_from_db()
            alarm.line = line
            publish_alarm(alarm)
            changed.append(alarm)
        _queue_notifications(created)
    return changed


def line_up(line, *, at: datetime) -> list[Alarm]:
    """The line answers again: its open line-down alarms are cleared (audited)."""
    return clear_by_system(
        Alarm.objects.filter(line=line, kind=EventKind.LINE_DOWN, state__in=OPEN_STATES),
        at=at,
        comment=f"the line answered again at {at.isoformat()}",
        by_event="line_up",
    )


def _open(rule: AlarmRule, line) -> Alarm | None:
    return (
        Alarm.objects.select_for_update(of=("self",))
        .filter(rule=rule, line=line, kind=EventKind.LINE_DOWN, state__in=OPEN_STATES)
        .first()
    )
