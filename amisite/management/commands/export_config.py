"""Write an organisation's configuration (grid, catalogue, read jobs, alarm rules) as JSON."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts import audit
from accounts.models import Organisation
from amisite.config_io import SECTIONS, export_configuration


class Command(BaseCommand):
    help = "Export one organisation's configuration to a file another system can import."

    def add_arguments(self, parser):
        parser.add_argument("--organisation", required=True, help="the organisation's code")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, organisation, output, **options):
        try:
            org = Organisation.objects.get(code=organisation)
        except Organisation.DoesNotExist:
            raise CommandError(f"no organisation with code {organisation!r}") from None
        document = export_configuration(org)
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as target:
                target.write(text)
        else:
            sys.stdout.write(text)
        counts = {s.name: len(document["sections"][s.name]) for s in SECTIONS}
        audit.record("configuration_exported", obj=org, changes=counts)
        self.stderr.write(", ".join(f"{n} {c}" for n, c in counts.items()))
