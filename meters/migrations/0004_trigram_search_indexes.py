"""Trigram indexes for the meter search (serial, service point code/address, customer).

Django's `icontains` on PostgreSQL is `UPPER(col::text) LIKE UPPER('%q%')`; a GIN trigram
index on that expression turns the search from a scan of three tables into index lookups.
SQLite has no such index type: nothing to do there.
"""

from django.db import migrations

INDEXES = [
    ("meters_meter_serial_trgm", "meters_meter", "serial"),
    ("meters_gridnode_code_trgm", "meters_gridnode", "code"),
    ("meters_gridnode_address_trgm", "meters_gridnode", "address"),
    ("meters_customer_account_trgm", "meters_customer", "account_number"),
    ("meters_customer_name_trgm", "meters_customer", "name"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("meters", "0003_alarms_rules_subscriptions_deliveries")]
    operations = [migrations.RunPython(create, drop)]
