"""CommStatus (per-meter reachability) becomes a model of the registry; its table stays.

State only: the table `collection_commstatus` keeps its name, rows, indexes and constraints
(collection/migrations/0008 drops the model from collection's state). The content type is
relabelled rather than recreated, so permissions granted on it and admin log entries follow.
"""

import django.db.models.deletion
from django.db import migrations, models


def relabel_content_type(apps, schema_editor, old="collection", new="meters"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if ContentType.objects.using(db).filter(app_label=new, model="commstatus").exists():
        return  # already there (post_migrate made it): leave both, nothing to carry over
    ContentType.objects.using(db).filter(app_label=old, model="commstatus").update(app_label=new)


def relabel_back(apps, schema_editor):
    relabel_content_type(apps, schema_editor, old="meters", new="collection")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("collection", "0007_plural_names"),
        ("meters", "0010_plural_names"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CommStatus",
                    fields=[
                        (
                            "meter",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="comm_status",
                                serialize=False,
                                to="meters.meter",
                            ),
                        ),
                        ("last_attempt", models.DateTimeField(blank=True, null=True)),
                        (
                            "last_success",
                            models.DateTimeField(blank=True, db_index=True, null=True),
                        ),
                        ("consecutive_failures", models.PositiveIntegerField(default=0)),
                        ("unreachable", models.BooleanField(db_index=True, default=False)),
                        ("last_error", models.TextField(blank=True)),
                        ("clock_drift_s", models.FloatField(blank=True, null=True)),
                    ],
                    options={
                        "verbose_name": "communication status",
                        "verbose_name_plural": "communication statuses",
                        "db_table": "collection_commstatus",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_type, relabel_back),
    ]
