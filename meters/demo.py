"""The demo data `make run` loads into an empty database: organisations, users, a small grid."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Organisation, User


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    what: str


DEMO_LOGINS = (
    DemoLogin("admin", "demo-admin-pass", "administrator of the whole utility (Django admin too)"),
    DemoLogin("north-operator", "demo-north-pass", "operator, North region only"),
    DemoLogin("north-analyst", "demo-analyst-pass", "read-only analyst, North region only"),
    DemoLogin("south-operator", "demo-south-pass", "operator, South region only"),
)


def demo_loaded() -> bool:
    """Any organisation means the database is in use (guardian adds an AnonymousUser itself)."""
    return Organisation.objects.exists()


@transaction.atomic
def load_demo() -> None:
    """Create the demo utility; the caller checks that the database is empty first."""
    utility = Organisation.objects.create(name="Demo Power & Light", code="demo-utility")
    north = Organisation.objects.create(name="North Region", code="north", parent=utility)
    south = Organisation.objects.create(name="South Region", code="south", parent=utility)
    User.objects.create_superuser(
        "admin", "admin@example.invalid", "demo-admin-pass", organisation=utility
    )
    for login, org in (
        (DEMO_LOGINS[1], north),
        (DEMO_LOGINS[2], north),
        (DEMO_LOGINS[3], south),
    ):
        User.objects.create_user(login.username, password=login.password, organisation=org)
