"""Roles are Django groups with fixed permission sets, kept in sync after every migrate."""

from __future__ import annotations

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission

# App labels whose models the roles cover.
DOMAIN_APPS = ("accounts", "meters", "collection", "loadcontrol", "reports", "vending", "portal")

ADMINISTRATOR = "administrator"
OPERATOR = "operator"
ENGINEER = "engineer"
ANALYST = "analyst"
VENDING_CLERK = "vending clerk"
PAYMENT_INTEGRATION = "payment integration"
CUSTOMER = "customer"


def _all(*apps, actions=("view", "add", "change", "delete")):
    return [(app, action) for app in apps for action in actions]


# (app label, action or full codename) pairs; "view" means every model's view permission.
ROLE_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    ADMINISTRATOR: _all(*DOMAIN_APPS)
    + [("accounts", "view_activitylog"), ("collection", "switch_relay")],
    # Operators watch the fleet, send commands (read jobs, connect/disconnect)
    # and acknowledge or clear alarms, and subscribe to their notifications.
    OPERATOR: _all(*DOMAIN_APPS, actions=("view",))
    + _all("collection", "loadcontrol", actions=("add", "change"))
    + [
        ("collection", "switch_relay"),
        ("meters", "change_alarm"),
        ("meters", "add_alarmsubscription"),
        ("meters", "change_alarmsubscription"),
        ("meters", "delete_alarmsubscription"),
    ],
    # Engineers configure meters, concentrators, meter models and the grid.
    ENGINEER: _all(*DOMAIN_APPS, actions=("view",))
    + _all("meters", "collection", actions=("add", "change", "delete")),
    # Analysts read everything in scope and run reports.
    ANALYST: _all(*DOMAIN_APPS, actions=("view",)) + _all("reports", actions=("add", "change")),
    VENDING_CLERK: [
        ("meters", "view_customer"),
        ("meters", "view_meter"),
        ("meters", "view_gridnode"),
    ]
    + _all("vending", actions=("view", "add")),
    # A third-party payment system's own identity: it pays through the API at the
    # integration station it is bound to and reads back its own sales (docs/vending.md).
    PAYMENT_INTEGRATION: [
        ("meters", "view_customer"),
        ("meters", "view_meter"),
        ("vending", "view_prepaidaccount"),
        ("vending", "view_tariff"),
        ("vending", "view_vendingstation"),
        ("vending", "view_sale"),
        ("vending", "add_sale"),
        ("vending", "view_token"),
    ],
    # Customers use only the portal, which scopes by their own customer record.
    CUSTOMER: [],
}
# Permission codenames no role but the administrator gets, whatever the action lists say.
ADMIN_ONLY = {"add_user", "change_user", "delete_user", "add_organisation", "delete_organisation"}


def is_customer(user) -> bool:
    """Whether `user` holds the customer role: such a user has no API (the portal scopes it)."""
    return user.groups.filter(name=CUSTOMER).exists()


def permissions_for(role: str, perms=None) -> list:
    """The permissions `role` gets, chosen from `perms` (default: every domain permission)."""
    wanted = ROLE_PERMISSIONS[role]
    if perms is None:
        perms = _domain_permissions()
    chosen = []
    for perm in perms:
        app = perm.content_type.app_label
        action = perm.codename.split("_", 1)[0]
        if (app, perm.codename) in wanted or (app, action) in wanted:
            if role != ADMINISTRATOR and perm.codename in ADMIN_ONLY:
                continue
            if perm.codename in ("access_organisation", "operate_organisation"):
                continue  # granted per user and organisation with guardian, never by role
            chosen.append(perm)
    return chosen


def _domain_permissions() -> list:
    return list(
        Permission.objects.select_related("content_type").filter(
            content_type__app_label__in=DOMAIN_APPS
        )
    )


def sync_roles(sender=None, **_kwargs) -> None:
    """Create or update the role groups (post_migrate; idempotent).

    Django sends post_migrate once per app, after that app's permissions are made, so the
    roles are synced on the last app's signal only, when every permission exists: synced
    on each of the 16 it cost 0.5 s of every migrate and of every test database flush."""
    if sender is not None and sender.label != _last_app_with_models():
        return
    perms = _domain_permissions()
    for role in ROLE_PERMISSIONS:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(permissions_for(role, perms))


def _last_app_with_models() -> str:
    return [app for app in django_apps.get_app_configs() if app.models_module is not None][-1].label
