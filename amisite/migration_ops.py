"""Migration operations shared by the apps' migrations."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """An index built concurrently on PostgreSQL, where the table is live and a plain CREATE
    INDEX would lock it (tests/test_migrations_safe.py); a plain index on SQLite (`make run`),
    which has no CONCURRENTLY and no readers to keep. The migration must be `atomic = False`."""

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
