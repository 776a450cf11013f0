"""The activity log is append-only in the database itself, not only in the application.

A trigger refuses every DELETE and every UPDATE of `accounts_activitylog`, for whichever role
the application connects as, so neither a bug, an admin action nor an SQL injection can
rewrite history. The one update allowed is the database's own `SET NULL` of `user_id` or
`organisation_id` when that user or organisation is deleted (every other column unchanged):
the row keeps `username` and stays. Removing old rows (retention) is a DBA's task under a
role that may disable the trigger (`ALTER TABLE ... DISABLE TRIGGER`), never the app's.
TRUNCATE (the test suite's flush) fires no row trigger. PostgreSQL only: the embedded
SQLite default is a single-user demo (and Django flushes SQLite test databases by DELETE).
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION accounts_activitylog_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.user_id IS NULL OR NEW.user_id IS NOT DISTINCT FROM OLD.user_id)
       AND (NEW.organisation_id IS NULL
            OR NEW.organisation_id IS NOT DISTINCT FROM OLD.organisation_id)
       AND (to_jsonb(NEW) - 'user_id' - 'organisation_id')
           = (to_jsonb(OLD) - 'user_id' - 'organisation_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the activity log is append-only: % of row % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_activitylog_append_only
    BEFORE UPDATE OR DELETE ON accounts_activitylog
    FOR EACH ROW EXECUTE FUNCTION accounts_activitylog_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS accounts_activitylog_append_only ON accounts_activitylog;
DROP FUNCTION IF EXISTS accounts_activitylog_append_only();
"""
def up(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)


def down(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_user_ordering")]

    operations = [migrations.RunPython(up, down)]
