"""Export the meter-model catalogue a user may see as CSV, XLSX or XML (one row per channel)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from meters.registry_io import FORMATS, record_catalogue_export, write_catalogue


class Command(BaseCommand):
    help = "Export the meter models (with their channels) a user may see to a catalogue file."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="act as this user (scope and audit)")
        parser.add_argument("--format", choices=FORMATS, default="csv")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, **options):
        try:
            user = User.objects.get(username=options["user"], is_active=True)
        except User.DoesNotExist:
            raise CommandError(f"no active user {options['user']!r}") from None
        fmt, output = options["format"], options["output"]
        if output:
            mode = ("wb", {}) if fmt == "xlsx" else ("w", {"encoding": "utf-8", "newline": ""})
            with open(output, mode[0], **mode[1]) as target:
                rows = write_catalogue(user, fmt, target)
        elif fmt == "xlsx":
            raise CommandError("XLSX needs --output")
        else:
            rows = write_catalogue(user, fmt, sys.stdout)
        record_catalogue_export(user, fmt, rows)
        if output:
            self.stderr.write(f"{rows} catalogue rows written to {output}")
