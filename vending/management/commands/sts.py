"""`manage.py sts encode|decode ...`: the STS engine's command line inside Django."""

from __future__ import annotations

import argparse
import sys

from django.core.management.base import BaseCommand, CommandError

from vending.sts.cli import main


class Command(BaseCommand):
    help = "Encode or decode STS tokens (see `manage.py sts --help`); wraps vending.sts.cli."

    def run_from_argv(self, argv):
        # argv: [manage.py, "sts", ...]; everything after goes to the engine's own parser.
        code = main(argv[2:], stdout=sys.stdout)
        if code:
            sys.exit(code)

    def add_arguments(self, parser):
        parser.add_argument("args", nargs=argparse.REMAINDER)

    def handle(self, *args, **options):
        # Reached through call_command("sts", "encode", ...).
        code = main(list(args), stdout=self.stdout)
        if code:
            raise CommandError(f"sts exited with status {code}", returncode=code)
