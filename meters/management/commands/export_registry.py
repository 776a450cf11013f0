"""Export the meter registry a user may see as CSV, XLSX or XML (secrets never included)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from meters.registry_io import FORMATS, filter_meters, record_export, write_export


class Command(BaseCommand):
    help = "Export the meters a user may see to a registry file."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="act as this user (scope and audit)")
        parser.add_argument("--format", choices=FORMATS, default="csv")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument("--q", default="", help="search, as on the meter list")
        parser.add_argument("--status", default="", help="only meters with this status")

    def handle(self, *args, **options):
        try:
            user = User.objects.get(username=options["user"], is_active=True)
        except User.DoesNotExist:
            raise CommandError(f"no active user {options['user']!r}") from None
        fmt, output = options["format"], options["output"]
        params = {"q": options["q"], "status": options["status"]}
        queryset = filter_meters(user, params)
        if output:
            mode = ("wb", {}) if fmt == "xlsx" else ("w", {"encoding": "utf-8", "newline": ""})
            with open(output, mode[0], **mode[1]) as target:
                rows = write_export(queryset, fmt, target)
        elif fmt == "xlsx":
            raise CommandError("XLSX needs --output")
        else:
            rows = write_export(queryset, fmt, sys.stdout)
        record_export(user, fmt, rows, params)
        if output:
            self.stderr.write(f"{rows} meters written to {output}")
