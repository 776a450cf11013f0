"""Shared lines after a batch: one status per line (meters.CommLine), one fault per dead line.

The reader watches every shared line of a batch (collection/reader.py, LineWatch); here what it
found is folded into the line's row: contact when any meter on it answered, one more failure
and "down" when it did not answer at all. A line going down is logged and pushed once, and
raises one alarm (meters.alarms.lines) -- its meters' own failure counts are left alone
(collection/actions.py), so they raise no "meter unreachable" each.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meters.alarms import lines as line_alarms
from meters.models import CommLine, DataConcentrator, LineKind, Meter

from .linelock import LineLocks
from .reader import LineWatch, MeterOutcome
from .status import publish_status

log = logging.getLogger(__name__)

CONCENTRATOR_PREFIX = "concentrator:"


def line_locks() -> LineLocks | None:
    """The leases that hold shared lines between processes (None without Redis); made in
    the event loop that uses them, closed by it."""
    if not settings.REDIS_URL:
        return None
    return LineLocks(
        settings.REDIS_URL, ttl_s=settings.AMI_LINE_LOCK_TTL_S, wait_s=settings.AMI_LINE_WAIT_S
    )


def line_limits(keys) -> dict[str, int]:
    """The operator's session limit of each of these lines that has a row."""
    return dict(CommLine.objects.filter(key__in=list(keys)).values_list("key", "max_sessions"))


def record_lines(
    watched: dict[str, LineWatch], outcomes: list[MeterOutcome], meters: dict[int, Meter]
) -> list[CommLine]:
    """Fold one batch's watched lines into their rows (made on first sight); returns them."""
    if not watched:
        return []
    now = timezone.now()
    by_line: dict[str, list[MeterOutcome]] = {}
    for outcome in outcomes:
        if outcome.line in watched:
            by_line.setdefault(outcome.line, []).append(outcome)
    changed = []
    with transaction.atomic():
        for key in sorted(watched):
            watch, mine = watched[key], by_line.get(key, [])
            if not mine:
                continue
            first = meters.get(mine[0].meter_id)
            if first is None:
                continue
            line = _locked_line(key, first)
            line.meters = watch.meters
            down = watch.down if watch.down and not any(o.ok for o in mine) else ""
            if _fold(line, down, now, f"{len(mine)} meters not read"):
                changed.append(line)
    if changed:
        publish_status({"changed": "line"})  # after commit
    return changed


def _fold(line: CommLine, down: str, now, lost: str) -> bool:
    """One more look at a locked line: answering (`down` empty) or down for that reason.
    Saves it, raises or clears its one alarm; True when it went down or came back."""
    was_down = line.down
    line.last_attempt = now
    if down:
        line.consecutive_failures += 1
        line.down = True
        line.down_since = line.down_since or now
        line.last_error = down[:2000]
    else:
        line.last_contact = now
        line.consecutive_failures = 0
        line.down, line.down_since, line.last_error = False, None, ""
    line.save()
    if line.down:
        if not was_down:
            log.warning("line %s down: %s (%s)", line.key, lost, down)
        line_alarms.line_down(line, at=now)  # raised once, counted each failed look
    elif was_down:
        log.info("line %s answers again", line.key)
        line_alarms.line_up(line, at=now)
    return line.down != was_down


def concentrator_line(concentrator: DataConcentrator) -> CommLine:
    """The concentrator's line row, locked (made now if it has none)."""
    CommLine.objects.get_or_create(
        key=f"{CONCENTRATOR_PREFIX}{concentrator.pk}",
        defaults={
            "kind": LineKind.CONCENTRATOR,
            "label": concentrator.name or concentrator.serial,
            "organisation_id": concentrator.organisation_id,
            "concentrator": concentrator,
        },
    )
    return CommLine.objects.select_for_update().get(key=f"{CONCENTRATOR_PREFIX}{concentrator.pk}")


def record_probe(
    concentrator: DataConcentrator, *, down: str = "", clock_drift_s: float | None = None
) -> CommLine:
    """Fold a probe of the concentrator into its line: it answered (`down` empty), or it is
    down for that reason (one fault and one alarm, as a read through it would be)."""
    now = timezone.now()
    with transaction.atomic():
        line = concentrator_line(concentrator)
        if not down:
            line.probed_at = now
            line.clock_drift_s = clock_drift_s
        changed = _fold(line, down, now, "its probe got no answer")
    if changed:
        publish_status({"changed": "line"})
    return line


def _locked_line(key: str, meter: Meter) -> CommLine:
    """The line's row, locked (made now if it has none)."""
    line = CommLine.objects.select_for_update().filter(key=key).first()
    if line is not None:
        return line
    if key.startswith(CONCENTRATOR_PREFIX) and meter.concentrator_id:
        return concentrator_line(meter.concentrator)
    defaults = {"kind": LineKind.BUS, "label": key, "organisation_id": meter.organisation_id}
    CommLine.objects.get_or_create(key=key, defaults=defaults)
    return CommLine.objects.select_for_update().get(key=key)
