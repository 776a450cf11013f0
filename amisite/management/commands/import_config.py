"""Apply a configuration file made by `export_config` to an organisation (all or nothing)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organisation
from amisite.config_io import ConfigError, import_configuration, read_document


class Command(BaseCommand):
    help = (
        "Import a configuration file: adds what is missing, updates what exists, deletes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--organisation", required=True, help="the organisation's code")
        parser.add_argument("--dry-run", action="store_true", help="check and count, write nothing")

    def handle(self, *args, file, organisation, dry_run, **options):
        try:
            org = Organisation.objects.get(code=organisation)
        except Organisation.DoesNotExist:
            raise CommandError(f"no organisation with code {organisation!r}") from None
        try:
            text = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            report = import_configuration(read_document(text), org, dry_run=dry_run)
        except ConfigError as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(f"nothing imported: {len(exc.problems)} problem(s)") from None
        self.stdout.write(report.as_text())
        if dry_run:
            self.stdout.write("dry run: nothing written")
