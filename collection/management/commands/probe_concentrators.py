"""Probe data concentrators now: their own status and the meters they report (JSON lines)."""

import json

from django.core.management.base import BaseCommand, CommandError

from collection.concentrators import probe_all
from meters.models import DataConcentrator


class Command(BaseCommand):
    help = "Probe concentrators (all with an endpoint, or the serials given); one JSON line each."

    def add_arguments(self, parser):
        parser.add_argument("serials", nargs="*", help="concentrator serials (default: all)")

    def handle(self, *args, **options):
        serials = options["serials"]
        concentrators = None
        if serials:
            concentrators = DataConcentrator.objects.filter(serial__in=serials)
            unknown = sorted(set(serials) - set(concentrators.values_list("serial", flat=True)))
            if unknown:
                raise CommandError(f"no concentrator with serial {', '.join(unknown)}")
        results = probe_all(concentrators)
        for result in results:
            self.stdout.write(json.dumps(result.as_dict()))
        if any(not r.ok for r in results):
            raise CommandError(f"{sum(not r.ok for r in results)} concentrator(s) did not answer")
