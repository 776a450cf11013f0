"""The portal's rows in the staff admin, scoped like every other admin page.

* Planned outages are entered here by the utility's staff (on their own grid).
* Payments are shown, never edited: only the provider's confirmation settles one
  (`portal.payments.settle`), so the admin is read-only.
* Stored bills and planned-outage notices are shown, never edited: a bill is issued once
  (`portal.bills`) and a notice records who was told of planned work and how it went.
* A customer's outage preferences may be changed by staff on the customer's behalf (a
  call to the help desk); the customer picker offers only customers in scope.
"""

from django.contrib import admin

from accounts.admin_base import ReadOnlyScopedAdmin, ScopedModelAdmin

from .models import Bill, OutagePreference, Payment, PlannedOutage, PlannedOutageNotice


@admin.register(PlannedOutage)
class PlannedOutageAdmin(ScopedModelAdmin):
    """Moving the times or the node, or ticking "cancelled", is a new revision: the
    customers are told again (portal.outages.notify_planned)."""

    list_display = ("node", "starts_at", "ends_at", "reason", "cancelled", "revision",
                    "organisation")  # fmt: skip
    list_filter = ("cancelled",)
    search_fields = ("reason", "node__code", "node__name")
    raw_id_fields = ("node",)
    readonly_fields = ("revision", "changed_at")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyScopedAdmin):
    list_display = ("reference", "customer", "amount", "currency", "provider", "state",
                    "created_at", "settled_at")  # fmt: skip
    list_filter = ("state", "provider")
    search_fields = ("reference", "provider_ref", "customer__account_number", "customer__name")
    date_hierarchy = "created_at"
    list_select_related = ("customer",)


@admin.register(OutagePreference)
class OutagePreferenceAdmin(ScopedModelAdmin):
    list_display = ("customer", "by_sms", "by_email", "planned", "quiet_start", "quiet_end")
    list_filter = ("by_sms", "by_email", "planned")
    search_fields = ("customer__account_number", "customer__name")
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)


@admin.register(Bill)
class BillAdmin(ReadOnlyScopedAdmin):
    list_display = ("month", "account_number", "customer", "total", "currency", "estimated",
                    "held", "issued_at")  # fmt: skip
    list_filter = ("estimated", "held", "month")
    search_fields = ("account_number", "customer__name")
    date_hierarchy = "month"
    list_select_related = ("customer",)


@admin.register(PlannedOutageNotice)
class PlannedOutageNoticeAdmin(ReadOnlyScopedAdmin):
    list_display = ("planned_outage", "customer", "channel", "revision", "state", "attempts",
                    "sent_at", "last_error")  # fmt: skip
    list_filter = ("state", "channel")
    search_fields = ("customer__account_number", "customer__name", "recipient")
    list_select_related = ("customer", "planned_outage")
