"""The index of a line's alarms, built concurrently on PostgreSQL (a plain one on SQLite)."""

from django.db import migrations, models

from amisite.migration_ops import AddIndexConcurrentlyOnPostgres


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
