# Closed months compacted (meters/store/compaction.py): the compacted table (PostgreSQL,
# partitioned by month on day; partitions are made by the compaction) and the view
# meters_interval that every reader of intervals reads (the interval table UNION ALL the
# compacted rows unpacked; on SQLite the interval table alone). The SQL is a snapshot: the
# module's constants may move on, this migration must not.

from django.db import migrations, models

COMPACT_TABLE = """CREATE TABLE meters_intervalday (
    meter_id bigint NOT NULL,
    day date NOT NULL,
    first_s integer NOT NULL,
    step_s integer NOT NULL,
    grp smallint NOT NULL,
    n smallint NOT NULL,
    offs integer[],
    q bigint[],
    v4 integer[],
    v8 bigint[],
    PRIMARY KEY (meter_id, grp, day)
) PARTITION BY RANGE (day)"""

VIEW_POSTGRES = """CREATE VIEW meters_interval AS SELECT meter_id, grp, ts, q, v0, v1, v2, v3, v4, v5, v6, v7, (ts AT TIME ZONE 'UTC')::date AS day FROM meters_intervalreading
UNION ALL
SELECT c.meter_id, c.grp, (c.day::timestamp AT TIME ZONE 'UTC') + coalesce(u.off, c.first_s + (u.i - 1) * c.step_s) * interval '1 second' AS ts, coalesce(u.q, 0)::bigint AS q, u.v0, u.v1, u.v2, u.v3, u.v4, u.v5, u.v6, u.v7,
    c.day
FROM meters_intervalday c
CROSS JOIN LATERAL ROWS FROM (
    generate_series(1, c.n),
    unnest(c.offs),
    unnest(c.q),
    unnest(coalesce(c.v8[1:1], c.v4[1:1]::bigint[])),
    unnest(coalesce(c.v8[2:2], c.v4[2:2]::bigint[])),
    unnest(coalesce(c.v8[3:3], c.v4[3:3]::bigint[])),
    unnest(coalesce(c.v8[4:4], c.v4[4:4]::bigint[])),
    unnest(coalesce(c.v8[5:5], c.v4[5:5]::bigint[])),
    unnest(coalesce(c.v8[6:6], c.v4[6:6]::bigint[])),
    unnest(coalesce(c.v8[7:7], c.v4[7:7]::bigint[])),
    unnest(coalesce(c.v8[8:8], c.v4[8:8]::bigint[]))
) AS u(i, off, q, v0, v1, v2, v3, v4, v5, v6, v7)"""

VIEW_PORTABLE = """CREATE VIEW meters_interval AS SELECT meter_id, grp, ts, q, v0, v1, v2, v3, v4, v5, v6, v7, date(ts) AS day FROM meters_intervalreading"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(COMPACT_TABLE)
        schema_editor.execute(VIEW_POSTGRES)
    else:
        schema_editor.execute(VIEW_PORTABLE)


def drop(apps, schema_editor):
    schema_editor.execute("DROP VIEW meters_interval")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TABLE meters_intervalday")


class Migration(migrations.Migration):

    dependencies = [
        ('meters', '0021_concentrator_own_data'),
    ]

    operations = [
        migrations.CreateModel(
            name='StoredInterval',
            fields=[
                ('pk', models.CompositePrimaryKey('meter_id', 'group', 'ts', blank=True, editable=False, primary_key=True, serialize=False)),
                ('ts', models.DateTimeField()),
                ('quality', models.BigIntegerField(db_column='q')),
                ('v0', models.BigIntegerField(null=True)),
                ('v1', models.BigIntegerField(null=True)),
                ('v2', models.BigIntegerField(null=True)),
                ('v3', models.BigIntegerField(null=True)),
                ('v4', models.BigIntegerField(null=True)),
                ('v5', models.BigIntegerField(null=True)),
                ('v6', models.BigIntegerField(null=True)),
                ('v7', models.BigIntegerField(null=True)),
                ('group', models.SmallIntegerField(db_column='grp')),
                ('day', models.DateField()),
            ],
            options={
                'db_table': 'meters_interval',
                'managed': False,
            },
        ),
        migrations.RunPython(create, drop),
    ]
