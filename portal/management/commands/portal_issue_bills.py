"""Issue (store, once) every customer's bill of a month: last month's unless `--month`.

The beat task `portal.issue_bills` does the same for last month from its issue day; this is
for a month it missed or one organisation. Only bills not yet issued are issued, so a run
stopped half way is finished by the next one (`portal.bills.issue_month`).
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Organisation
from meters.models import Customer
from portal import bills
from portal.customers import month_start


class Command(BaseCommand):
    help = "Issue the customers' bills of a month: [--month YYYY-MM] [--organisation CODE]"

    def add_arguments(self, parser):
        parser.add_argument("--month", default=None, help="YYYY-MM (default: last month)")
        parser.add_argument("--organisation", default=None, help="only this organisation's code")

    def handle(self, month=None, organisation=None, **options):
        now = timezone.now()
        month = month or f"{month_start(timezone.localdate(now), 1):%Y-%m}"
        if not bills.is_billable(month):
            raise CommandError(f"--month: {month} is not a complete month of the last years")
        if timezone.localdate(now) < bills.issues_on(month):
            raise CommandError(f"the bills of {month} are issued from {bills.issues_on(month)}")
        customers = Customer.objects.all()
        if organisation:
            org = Organisation.objects.filter(code=organisation).first()
            if org is None:
                raise CommandError(f"no organisation with code {organisation!r}")
            customers = customers.filter(organisation=org)
        issued = bills.issue_month(month, now, customers)
        self.stdout.write(f"{issued} bills of {month} issued")
