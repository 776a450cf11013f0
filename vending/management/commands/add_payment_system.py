"""`manage.py add_payment_system ORG CODE NAME`: a payment system's station and identity."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organisation
from vending.actions import add_payment_system


class Command(BaseCommand):
    help = (
        "Create a third-party payment system: an integration station and its own API "
        "identity (role 'payment integration'); prints the identity's password once."
    )

    def add_arguments(self, parser):
        parser.add_argument("organisation", help="organisation code the station sells for")
        parser.add_argument("code", help="station code, e.g. NORTH-BANK")
        parser.add_argument("name", help="the payment system's name")

    def handle(self, *args, organisation, code, name, **options):
        org = Organisation.objects.filter(code=organisation).first()
        if org is None:
            raise CommandError(f"no organisation with code {organisation!r}")
        station, user, password = add_payment_system(org, code=code, name=name)
        self.stdout.write(
            f"station {station.code} ({station.get_kind_display()})\n"
            f"identity {user.get_username()} password {password}\n"
            "get a token: POST /api/token/ with this user name and password"
        )
