"""Import a meter-model catalogue file (CSV, XLSX or XML) as a given user: all rows or none."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from meters.registry_io import FORMATS, import_catalogue
from meters.registry_io.catalogue import error_text


class Command(BaseCommand):
    help = (
        "Import meter models and their channels (one row per channel); every row is checked "
        "first, then all applied."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--user", required=True, help="act as this user (scope and audit)")
        parser.add_argument("--format", choices=FORMATS, help="default: from the file name")
        parser.add_argument("--dry-run", action="store_true", help="check only, change nothing")

    def handle(self, *args, **options):
        try:
            user = User.objects.get(username=options["user"], is_active=True)
        except User.DoesNotExist:
            raise CommandError(f"no active user {options['user']!r}") from None
        try:
            with open(options["file"], "rb") as handle:
                result = import_catalogue(
                    handle, options["format"], user, dry_run=options["dry_run"]
                )
        except OSError as exc:
            raise CommandError(str(exc)) from None
        for error in result.errors:
            self.stderr.write(error_text(error))
        if not result.ok:
            raise CommandError(result.summary())
        self.stdout.write(result.summary())
