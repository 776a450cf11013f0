"""The supply relay as collection last saw it, kept in the registry's `CommStatus`.

Two sources: a read of the disconnect control (the `relay` read item, stamped with when it
was read) and relay events in a meter's logs (read or pushed, stamped with the event's time;
meters/alarms/events.py `RELAY_CODES`). Whichever is newer wins, so a late-arriving old
event never undoes a newer read, and the dashboard's "disconnected" is the latest word.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection

from amisite.pgbulk import execute_rows
from meters.alarms.events import DERIVED_LOG, RELAY_CODES
from meters.choices import RELAY_OPEN, RelayState
from meters.models import CommStatus

# DisconnectControl.control_state as the session reports it -> the registry's state
# ("unknown" and anything else: nothing learned).
_CONTROL_STATES = {state.value: state for state in RelayState}


# The open states as an SQL list (constants of meters.choices, not input).
OPEN_SQL = "(" + ", ".join(f"'{state.value}'" for state in RELAY_OPEN) + ")"


def state_of_control(control_state: str) -> str | None:
    """The registry's relay state for a session's `RelayState.control_state`, if known."""
    return _CONTROL_STATES.get(control_state)


def relay_events(batch: Iterable) -> dict[int, tuple[str, datetime]]:
    """The newest relay event per meter of an ingest batch, as (state, time).

    `batch` is [(meter or meter id, [MeterEvent(timestamp, code, log, data)]), ...], the
    batch `collection.ingest.ingest_events` takes.
    """
    newest: dict[int, tuple[str, datetime]] = {}
    for meter, events in batch:
        meter_id = meter if isinstance(meter, int) else meter.pk
        for event in events:
            state = RELAY_CODES.get(int(event.code))
            if state is None or event.log == DERIVED_LOG:
                continue
            at = event.timestamp.astimezone(UTC)
            if meter_id not in newest or at > newest[meter_id][1]:
                newest[meter_id] = (state, at)
    return newest


def record_relay_states(seen: dict[int, tuple[str, datetime]]) -> int:
    """Fold (state, time) per meter into CommStatus where it is newer; returns rows changed.

    A few statements whatever the number of meters: create missing rows (a read, and an
    insert only if some are missing), lock the rows in meter order (concurrent batches never
    deadlock), one `UPDATE ... FROM unnest(...)`."""
    if not seen:
        return 0
    CommStatus.create_missing(seen)
    ids = sorted(seen)
    list(
        CommStatus.objects.filter(meter_id__in=ids)
        .order_by("meter_id")
        .select_for_update()
        .values_list("pk", flat=True)
    )
    if connection.vendor != "postgresql":
        return _fold_rows(seen, ids)
    table = CommStatus._meta.db_table
    with connection.cursor() as cursor:
        changed = execute_rows(
            cursor,
            f"UPDATE {table} AS t SET relay_state = v.state, relay_state_at = v.at, "
            # Open since: kept while it stays open, the new time when it opens, none when closed.
            f"relay_open_since = CASE WHEN v.state NOT IN {OPEN_SQL} THEN NULL "
            f"WHEN t.relay_state IN {OPEN_SQL} THEN coalesce(t.relay_open_since, v.at) "
            "ELSE v.at END "
            "FROM (%s) AS v(meter_id, state, at) WHERE t.meter_id = v.meter_id "
            "AND (t.relay_state_at IS NULL OR t.relay_state_at < v.at) RETURNING t.meter_id",
            [(meter_id, *seen[meter_id]) for meter_id in ids],
            ["bigint", "text", "timestamptz"],
            fetch=True,
        )
    return len(changed)


def _fold_rows(seen: dict[int, tuple[str, datetime]], ids: list[int]) -> int:
    """`record_relay_states`'s update row by row, for SQLite (`make run`), whose transaction
    already holds the database's write lock; the same rules as the PostgreSQL statement."""
    changed = []
    for row in CommStatus.objects.filter(meter_id__in=ids):
        state, at = seen[row.meter_id]
        if row.relay_state_at is not None and row.relay_state_at >= at:
            continue
        if state not in RELAY_OPEN:
            row.relay_open_since = None  # closed
        elif row.relay_state in RELAY_OPEN:
            row.relay_open_since = row.relay_open_since or at  # still open: kept
        else:
            row.relay_open_since = at  # opens now
        row.relay_state, row.relay_state_at = state, at
        changed.append(row)
    CommStatus.objects.bulk_update(
        changed, ["relay_state", "relay_state_at", "relay_open_since"], batch_size=500
    )
    return len(changed)
