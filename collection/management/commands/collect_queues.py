"""The read queues the fleet needs under AMI_COLLECT_ROUTE_BY (collection/queues.py)."""

from django.core.management.base import BaseCommand

from collection import queues


class Command(BaseCommand):
    help = (
        "Print the read queues of the fleet, comma-separated for celery worker -Q "
        "(AMI_COLLECT_ROUTE_BY: region, protocol or region,protocol; empty: collect)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--match",
            default="",
            help="only queues containing this text (e.g. a region code: the queues one "
            "host's workers take)",
        )

    def handle(self, *args, match, **options):
        names = [q for q in queues.fleet_queues() if match.lower() in q]
        self.stdout.write(",".join(names))
