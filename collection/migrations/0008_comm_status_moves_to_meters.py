"""CommStatus leaves collection's state: the registry owns it now (meters/migrations/0011).

State only; the table `collection_commstatus` and its rows stay where they are.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("collection", "0007_plural_names"),
        ("meters", "0011_comm_status_moves_to_the_registry"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="CommStatus")],
            database_operations=[],
        ),
    ]
