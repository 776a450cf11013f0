"""Alarm rules may cover an organisation's own meters only; every organisation gets defaults."""

from django.db import migrations, models


def install_defaults(apps, schema_editor):
    # The rules every new organisation gets (meters/alarms/defaults.py), for those made before.
    from meters.alarms.defaults import missing_default_rules

    AlarmRule = apps.get_model("meters", "AlarmRule")
    Organisation = apps.get_model("accounts", "Organisation")
    for organisation in Organisation.objects.order_by("path"):
        for values in missing_default_rules(AlarmRule.objects, organisation):
            AlarmRule.objects.create(**values)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_user_ordering"),
        ("meters", "0008_alarm_kind_system_title_mismatch"),
    ]

    operations = [
        migrations.AddField(
            model_name="alarmrule",
            name="default_key",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="which default rule this is (meters/alarms/defaults.py); empty: made by hand",
                max_length=40,
            ),
        ),
        migrations.AddField(
            model_name="alarmrule",
            name="subtree",
            field=models.BooleanField(
                default=True,
                help_text="raise for the meters of organisations below this one too (default rules: each organisation has its own, so they cover its own meters only)",
                verbose_name="also sub-organisations",
            ),
        ),
        migrations.RunPython(install_defaults, migrations.RunPython.noop),
    ]
