# The measurement store (meters/store.py). The interval table is created by hand on
# PostgreSQL: range-partitioned by month on ts, with a default partition so that no
# timestamp is ever lost; monthly partitions are added by meters.partitions.

import django.db.models.deletion
from django.db import migrations, models

INTERVAL_TABLE_POSTGRES = """
CREATE TABLE meters_intervalreading (
    meter_id bigint NOT NULL,
    ts timestamp with time zone NOT NULL,
    q bigint NOT NULL,
    v0 bigint, v1 bigint, v2 bigint, v3 bigint,
    v4 bigint, v5 bigint, v6 bigint, v7 bigint,
    grp smallint NOT NULL,
    PRIMARY KEY (meter_id, grp, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE meters_intervalreading_default PARTITION OF meters_intervalreading DEFAULT;
"""


def create_interval_table(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INTERVAL_TABLE_POSTGRES)
    else:
        schema_editor.create_model(apps.get_model("meters", "IntervalReading"))


def drop_interval_table(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TABLE meters_intervalreading CASCADE")
    else:
        schema_editor.delete_model(apps.get_model("meters", "IntervalReading"))


def meter_fk():
    return models.ForeignKey(
        db_constraint=False,
        on_delete=django.db.models.deletion.PROTECT,
        related_name="+",
        to="meters.meter",
    )


def channel_fk():
    return models.ForeignKey(
        db_constraint=False,
        on_delete=django.db.models.deletion.PROTECT,
        related_name="+",
        to="meters.channel",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("meters", "0001_grid_meters_customers"),
    ]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="profile_group",
            field=models.PositiveSmallIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="channel",
            name="profile_column",
            field=models.PositiveSmallIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddConstraint(
            model_name="channel",
            constraint=models.UniqueConstraint(
                condition=models.Q(("profile_column__isnull", False)),
                fields=("meter_model", "profile_group", "profile_column"),
                name="channel_unique_store_column",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IntervalReading",
                    fields=[
                        (
                            "pk",
                            models.CompositePrimaryKey(
                                "meter_id",
                                "group",
                                "ts",
                                blank=True,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("meter", meter_fk()),
                        ("ts", models.DateTimeField(help_text="interval end (UTC)")),
                        (
                            "quality",
                            models.BigIntegerField(
                                db_column="q", default=0, help_text="8 flag bits per column"
                            ),
                        ),
                        ("v0", models.BigIntegerField(null=True)),
                        ("v1", models.BigIntegerField(null=True)),
                        ("v2", models.BigIntegerField(null=True)),
                        ("v3", models.BigIntegerField(null=True)),
                        ("v4", models.BigIntegerField(null=True)),
                        ("v5", models.BigIntegerField(null=True)),
                        ("v6", models.BigIntegerField(null=True)),
                        ("v7", models.BigIntegerField(null=True)),
                        ("group", models.SmallIntegerField(db_column="grp")),
                    ],
                    options={"abstract": False},
                ),
            ],
        ),
        # After the state change, so that the function sees the model (and before it on
        # the way back).
        migrations.RunPython(create_interval_table, drop_interval_table),
        migrations.CreateModel(
            name="RegisterRead",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "meter_id",
                        "channel_id",
                        "read_at",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("meter", meter_fk()),
                ("channel", channel_fk()),
                ("read_at", models.DateTimeField(help_text="when the meter was read (UTC)")),
                ("value", models.BigIntegerField(help_text="in units of 10**channel.scaler")),
                (
                    "capture_time",
                    models.DateTimeField(blank=True, help_text="maximum demand time", null=True),
                ),
                ("quality", models.SmallIntegerField(default=0)),
            ],
            options={"abstract": False},
        ),
        migrations.CreateModel(
            name="EventRecord",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "meter_id",
                        "log",
                        "ts",
                        "code",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("meter", meter_fk()),
                ("log", models.CharField(max_length=32, verbose_name="event log OBIS")),
                ("ts", models.DateTimeField()),
                ("code", models.IntegerField(help_text="the meter's own event code")),
                ("data", models.JSONField(blank=True, default=list)),
            ],
            options={"abstract": False},
        ),
        migrations.CreateModel(
            name="UnmappedValue",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("meter", meter_fk()),
                ("kind", models.CharField(max_length=16)),
                ("obis", models.CharField(max_length=32)),
                ("ts", models.DateTimeField(help_text="interval end or read time (UTC)")),
                (
                    "value",
                    models.CharField(blank=True, help_text="exact decimal text", max_length=64),
                ),
                ("unit", models.CharField(blank=True, max_length=16)),
                ("quality", models.SmallIntegerField(default=0)),
                ("reason", models.CharField(max_length=64)),
                ("received_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("meter", "kind", "obis", "ts"), name="unmapped_value_unique"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="DailyEnergy",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "meter_id",
                        "channel_id",
                        "day",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("meter", meter_fk()),
                ("channel", channel_fk()),
                ("day", models.DateField(help_text="the utility's local day (settings.TIME_ZONE)")),
                ("value", models.BigIntegerField(help_text="in units of 10**channel.scaler")),
                (
                    "intervals",
                    models.SmallIntegerField(help_text="intervals with a value (92/96/100)"),
                ),
                ("estimated", models.SmallIntegerField(default=0, help_text="of which estimated")),
            ],
            options={
                "indexes": [models.Index(fields=["day", "channel"], name="daily_energy_day")],
            },
        ),
    ]
