"""Audit rows cannot be changed or deleted through the application's database connection."""

import pytest
from django.db import DatabaseError, connection, transaction

from accounts import audit
from accounts.models import ActivityLog, User

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def row(world):
    audit.record("test_action", user=world.operator_a, detail="what happened")
    return ActivityLog.objects.get(action="test_action")


def refused(operation) -> bool:
    try:
        with transaction.atomic():
            operation()
    except DatabaseError as exc:
        assert "append-only" in str(exc)
        return True
    return False


def test_update_and_delete_are_refused(row):
    assert refused(lambda: ActivityLog.objects.filter(pk=row.pk).update(detail="rewritten"))
    assert refused(lambda: ActivityLog.objects.filter(pk=row.pk).update(user=None, detail="x"))
    assert refused(lambda: ActivityLog.objects.filter(pk=row.pk).delete())
    assert refused(lambda: ActivityLog.objects.all().delete())
    with connection.cursor() as cursor:  # raw SQL is refused just the same
        assert refused(lambda: cursor.execute("DELETE FROM accounts_activitylog"))
        assert refused(lambda: cursor.execute("UPDATE accounts_activitylog SET action = 'nothing'"))
    row.refresh_from_db()
    assert (row.action, row.detail) == ("test_action", "what happened")


def test_deleting_the_user_keeps_the_row_with_its_name(row, world):
    User.objects.filter(pk=world.operator_a.pk).delete()
    row.refresh_from_db()
    assert row.user_id is None and row.username == "operator-a"
    assert row.detail == "what happened"
