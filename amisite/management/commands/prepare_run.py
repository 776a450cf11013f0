"""`make run`'s preparation in one process: migrate, collect the static files, close the runs
an earlier start left open, load the demo into an empty database and queue its first reads.

The launcher ran these as four `manage.py` processes in a row, each paying Django's start
(~3-4 s on two cores: the apps, the admin, the protocol stacks, the exporters) before the
system could come up; `make run`'s promise is alarms and an outage within two minutes.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "make run's start: migrate, collectstatic, expire_runs --interrupted, load_demo --read-now."
    )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        # No worker runs yet: the runs still open were interrupted.
        call_command("expire_runs", interrupted=True, stdout=self.stdout)
        call_command("load_demo", read_now=True, stdout=self.stdout)
