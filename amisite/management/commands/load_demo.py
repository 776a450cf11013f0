"""Load the demo utility into an empty database, start its first reads, print the logins.

The site's command (not the registry's): it drives meters' demo (which calls the other
apps' parts) and collection's reads.
"""

from django.core.management.base import BaseCommand

from accounts.demo import DEMO_TOTP_BASE32
from accounts.models import User
from collection import actions, enqueue
from collection.models import ReadJob
from meters.demo import DEMO_LOGINS, demo_loaded, load_demo
from meters.models import Meter


class Command(BaseCommand):
    help = "Load the demo (organisations, users, grid, simulated meters) if the database is empty."

    def add_arguments(self, parser):
        parser.add_argument(
            "--read-now",
            action="store_true",
            help="queue a run of each read job that never ran or was interrupted (make run: data "
            "at once, not at the next quarter-hour)",
        )

    def handle(self, *args, **options):
        fresh = not demo_loaded()
        if fresh:
            load_demo()
            self.stdout.write("[ami] demo loaded")
        else:
            self.stdout.write("[ami] database already has data: demo not reloaded")
        if options["read_now"]:
            # The first read, or the one an earlier start did not finish (it died half way).
            if actions.resume_reads(ReadJob.objects.all()):
                self.stdout.write("[ami] first reads of the demo fleet queued")
            enqueue.probe_concentrators()  # their pages list what they report at once
            if fresh:
                # A command a newcomer can open at once: an on-demand read (clock, voltages
                # and currents, the relay) of the first meter, as an operator would ask.
                first = Meter.objects.order_by("serial").first()
                operator = User.objects.get(username="north-operator")
                actions.request_on_demand_read(
                    first, ["clock", "instantaneous", "relay"], acting_user=operator
                )
        self.stdout.write("[ami] demo logins (user / password):")
        users = max(len(login.username) for login in DEMO_LOGINS)
        passwords = max(len(login.password) for login in DEMO_LOGINS)
        for login in DEMO_LOGINS:  # columns as wide as the longest name and password
            self.stdout.write(
                f"[ami]   {login.username:{users}}  {login.password:{passwords}}  {login.what}"
            )
        self.stdout.write(
            "[ami] staff and administrators (admin, north-admin, north-engineer) then enter a "
            f"code: TEST authenticator key {DEMO_TOTP_BASE32}; current code: "
            f".venv/bin/python manage.py totp_code {DEMO_TOTP_BASE32}"
        )
