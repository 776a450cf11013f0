"""A notice is unique per revision of its planned outage, not per planned outage.

Safe while the previous release runs: on PostgreSQL the new unique index is built
CONCURRENTLY (no lock on writes), then becomes the constraint (`USING INDEX`: no scan), and
only then is the old constraint dropped. The old release inserts revision 1 (the column's
database default), so its rows keep satisfying the new constraint. Elsewhere (the embedded
SQLite) the schema editor swaps the constraints as usual.
"""

from django.db import migrations, models

OLD = "portal_planned_notice_once"
NEW = "portal_planned_notice_once_a_revision"
OLD_CONSTRAINT = models.UniqueConstraint(fields=("planned_outage", "customer", "channel"), name=OLD)
NEW_CONSTRAINT = models.UniqueConstraint(
    fields=("planned_outage", "customer", "channel", "revision"), name=NEW
)


def _swap(apps, schema_editor, add, drop):
    model = apps.get_model("portal", "PlannedOutageNotice")
    table = model._meta.db_table
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.add_constraint(model, add)
        schema_editor.remove_constraint(model, drop)
        return
    columns = ", ".join(
        schema_editor.quote_name(model._meta.get_field(name).column) for name in add.fields
    )
    quoted_table, new, old = (schema_editor.quote_name(n) for n in (table, add.name, drop.name))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", [add.name])
        done = cursor.fetchone() is not None  # a run cut off after this step
    if not done:
        # an index left invalid by a cut-off CREATE ... CONCURRENTLY is rebuilt
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {new}")
        schema_editor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY {new} ON {quoted_table} ({columns})"
        )
        schema_editor.execute(
            f"ALTER TABLE {quoted_table} ADD CONSTRAINT {new} UNIQUE USING INDEX {new}"
        )
    schema_editor.execute(f"ALTER TABLE {quoted_table} DROP CONSTRAINT IF EXISTS {old}")


def forwards(apps, schema_editor):
    _swap(apps, schema_editor, NEW_CONSTRAINT, OLD_CONSTRAINT)


def backwards(apps, schema_editor):
    _swap(apps, schema_editor, OLD_CONSTRAINT, NEW_CONSTRAINT)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("portal", "0006_planned_outage_revisions")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.RemoveConstraint(model_name="plannedoutagenotice", name=OLD),
                migrations.AddConstraint(model_name="plannedoutagenotice", constraint=NEW_CONSTRAINT),
            ],
        )
    ]
