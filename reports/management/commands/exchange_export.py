"""`manage.py exchange_export --target ID [--day YYYY-MM-DD] [--force]`: write a target's
export files for a day now (default yesterday); `--force` rewrites a slot already done, in
place under the same name."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from reports.exchange import export
from reports.models import ExchangeTarget


class Command(BaseCommand):
    help = "Write an exchange target's CIM export files for one day into its outgoing/ folder."

    def add_arguments(self, parser):
        parser.add_argument("--target", type=int, required=True, help="the target's id")
        parser.add_argument("--day", help="YYYY-MM-DD (default: yesterday, the utility's time)")
        parser.add_argument("--force", action="store_true", help="rewrite slots already done")

    def handle(self, *args, target, day=None, force=False, **options):
        found = ExchangeTarget.objects.select_related("organisation", "run_as").filter(pk=target)
        found = found.first()
        if found is None:
            raise CommandError(f"no exchange target with id {target}")
        try:
            when = date.fromisoformat(day) if day else export.yesterday()
        except ValueError:
            raise CommandError(f"bad day {day!r}: use YYYY-MM-DD") from None
        for document in export.documents(found):
            try:
                row = export.export_slot(found, document, when, force=force)
            except export.RetryLater as exc:
                raise CommandError(str(exc)) from None
            if row is None:
                self.stdout.write(f"{document} {when}: done already (--force rewrites it)")
            else:
                self.stdout.write(f"{row.filename}: {row.get_state_display()}: {row.summary}")
