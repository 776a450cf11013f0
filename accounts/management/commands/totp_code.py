"""`manage.py totp_code SECRET`: the current code of a TOTP secret (base32, as shown)."""

from __future__ import annotations

import base64

from django.core.management.base import BaseCommand, CommandError

from accounts.two_factor import code_now


class Command(BaseCommand):
    help = (
        "Print the current 6-digit code of a TOTP secret (the demo's TEST secret, or any key "
        "you hold): an authenticator app on the command line. Reads no database."
    )

    def add_arguments(self, parser):
        parser.add_argument("secret", help="the base32 key, as the enrolment page shows it")

    def handle(self, *args, secret, **options):
        text = secret.replace(" ", "").upper()
        try:
            raw = base64.b32decode(text + "=" * (-len(text) % 8))
        except ValueError:
            raise CommandError("not a base32 key") from None
        self.stdout.write(code_now(raw.hex()))
