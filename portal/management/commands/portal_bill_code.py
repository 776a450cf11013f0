"""Print the portal activation code of a customer's bill (this month's, or `--month`)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from meters.models import Customer
from portal.activation import bill_code


class Command(BaseCommand):
    help = "The activation code printed on a customer's bill: ACCOUNT [--month YYYY-MM]"

    def add_arguments(self, parser):
        parser.add_argument("account_number")
        parser.add_argument("--month", default=None, help="YYYY-MM (default: this month)")

    def handle(self, account_number, month=None, **options):
        customer = Customer.objects.filter(account_number=account_number).first()
        if customer is None:
            raise CommandError(f"no customer with account number {account_number!r}")
        month = month or timezone.localdate().strftime("%Y-%m")
        self.stdout.write(bill_code(customer, month))
