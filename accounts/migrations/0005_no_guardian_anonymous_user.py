"""Remove django-guardian's "AnonymousUser" row (ANONYMOUS_USER_NAME is None from now on)."""

from django.db import migrations


def remove_anonymous_user(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    # Only guardian's own row: that name, no usable password, no organisation, no staff flags.
    User.objects.filter(
        username="AnonymousUser",
        password__startswith="!",
        organisation__isnull=True,
        is_staff=False,
        is_superuser=False,
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_activity_log_append_only")]

    operations = [migrations.RunPython(remove_anonymous_user, migrations.RunPython.noop)]
