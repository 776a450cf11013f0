"""`manage.py simulate_meters --protocol dlms --count N ...`: simulated meters on 127.0.0.1."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from collection.simulators import cli


class Command(BaseCommand):
    help = (
        "Run simulated meters on 127.0.0.1 until interrupted (see collection/simulators/README.md)."
    )

    def run_from_argv(self, argv):
        sys.exit(cli.main(argv[2:]))
