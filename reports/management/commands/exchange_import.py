"""`manage.py exchange_import [--target ID]`: import the MeterConfig files waiting in the
exchange targets' incoming/ folders now (what the beat task does every minute)."""

from django.core.management.base import BaseCommand, CommandError

from reports.exchange import importer
from reports.models import ExchangeTarget


class Command(BaseCommand):
    help = "Import the complete MeterConfig files of every exchange target's incoming/ folder."

    def add_arguments(self, parser):
        parser.add_argument("--target", type=int, help="only this target (its id)")

    def handle(self, *args, target=None, **options):
        targets = ExchangeTarget.objects.filter(enabled=True, imports=True).select_related(
            "organisation", "run_as"
        )
        if target is not None:
            targets = targets.filter(pk=target)
            if not targets.exists():
                raise CommandError(f"no enabled import target with id {target}")
        failed = 0
        for each in targets:
            outcomes = importer.scan(each)
            if outcomes is None:
                self.stdout.write(f"{each.folder}: another import is running; skipped")
                continue
            for outcome in outcomes:
                row = outcome.row
                self.stdout.write(f"{each.folder}/{row.filename}: {row.state}: {row.summary}")
                failed += row.state == "rejected"
        if failed:
            self.stderr.write(f"{failed} file(s) rejected: see the reports in rejected/")
