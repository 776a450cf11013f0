"""The index of a line's alarms, built concurrently on PostgreSQL: the alarm table is live
and a plain CREATE INDEX would lock it (tests/test_migrations_safe.py). SQLite (`make run`)
has no CONCURRENTLY and no readers to keep: a plain index there."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    def _ensure_not_in_transaction(self, schema_editor):
        if not schema_editor.collect_sql:  # sqlmigrate (the linter) only collects the SQL
            super()._ensure_not_in_transaction(schema_editor)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("meters", "0017_comm_lines"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="alarm",
            index=models.Index(
                condition=models.Q(("line__isnull", False)),
                fields=["line", "kind", "state"],
                name="alarm_line_idx",
            ),
        ),
    ]
