"""A channel says whether its values are interval energy or a cumulative register.

Existing channels take the default of their OBIS code (value group D = 8 or 9: cumulative),
which is what the code assumed for registers and what real profiles capturing registers are.
"""

from django.db import migrations, models

CUMULATIVE_D = {8, 9}


def _d(obis: str) -> int | None:
    try:
        return int(obis.split(":", 1)[1].split(".")[1])
    except (IndexError, ValueError):
        return None


def set_defaults(apps, schema_editor):
    Channel = apps.get_model("meters", "Channel")
    cumulative = [c.pk for c in Channel.objects.only("obis") if _d(c.obis) in CUMULATIVE_D]
    Channel.objects.filter(pk__in=cumulative).update(accumulation="cumulative")
    Channel.objects.exclude(pk__in=cumulative).update(accumulation="interval")


class Migration(migrations.Migration):
    dependencies = [("meters", "0005_remember_get_with_list_per_meter_model")]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="accumulation",
            field=models.CharField(
                blank=True,
                choices=[
                    ("interval", "Interval (consumption per capture period)"),
                    ("cumulative", "Cumulative (register value at each capture)"),
                ],
                help_text="interval or cumulative values; left blank, set from the OBIS code "
                "(value group D = 8 or 9: cumulative)",
                max_length=16,
            ),
        ),
        migrations.RunPython(set_defaults, migrations.RunPython.noop),
    ]
