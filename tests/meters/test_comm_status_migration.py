"""CommStatus moves from collection to the registry (meters) without touching its table.

Migrated back to before the move, the table is filled through collection's historical model
and a permission is granted on collection's content type; migrated forward again, every row,
the content type and the grant belong to meters.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from meters.models import CommStatus

BEFORE = [("meters", "0010_plural_names"), ("collection", "0007_plural_names")]
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def _migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor.loader.project_state(targets).apps if targets else None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rows_content_type_and_grants_survive_the_move(world):
    meters = world.grid_a.meters[:2]
    old = _migrate(BEFORE)
    try:
        OldCommStatus = old.get_model("collection", "CommStatus")
        OldCommStatus.objects.create(
            meter_id=meters[0].pk,
            last_attempt=T0,
            last_success=T0,
            consecutive_failures=0,
            clock_drift_s=-2.5,
        )
        OldCommStatus.objects.create(
            meter_id=meters[1].pk, consecutive_failures=4, unreachable=True, last_error="timeout"
        )
        # Production before the move: the content type is collection's, with grants on it.
        OldContentType = old.get_model("contenttypes", "ContentType")
        OldPermission = old.get_model("auth", "Permission")
        OldContentType.objects.filter(model="commstatus").delete()
        old_type = OldContentType.objects.create(app_label="collection", model="commstatus")
        view = OldPermission.objects.create(
            content_type=old_type, codename="view_commstatus", name="Can view"
        )
        old.get_model("auth", "Group").objects.create(name="watchers").permissions.add(view)
    finally:
        _migrate()
    ContentType.objects.clear_cache()

    rows = {s.meter_id: s for s in CommStatus.objects.all()}
    assert set(rows) == {meters[0].pk, meters[1].pk}
    assert (rows[meters[0].pk].last_success, rows[meters[0].pk].clock_drift_s) == (T0, -2.5)
    assert (rows[meters[1].pk].unreachable, rows[meters[1].pk].last_error) == (True, "timeout")
    assert meters[1].comm_status.consecutive_failures == 4
    new_type = ContentType.objects.get_for_model(CommStatus)
    assert (new_type.pk, new_type.app_label) == (old_type.pk, "meters")
    granted = Group.objects.get(name="watchers").permissions.get()
    assert (granted.content_type_id, granted.codename) == (old_type.pk, "view_commstatus")
