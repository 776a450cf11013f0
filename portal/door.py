"""The customer's door: a signed-in customer reaches the portal and nothing else.

A customer is a user linked to a customer record (`Customer.portal_user`) or holding the
customer role. Such a session reaches `/portal/`, sign-in and sign-out, static files and
the health check; every other address (staff pages, `/account/...`, the admin, the
operator API, the API docs) answers a plain 403 in the portal's layout (JSON under
`/api/`), whatever the customer's permissions would say. The answer "is this user a
customer" is kept in the session with the user's id, so a page costs no query for it
after sign-in (`signed_in` writes it with the new session).

A customer who enrolled a second factor (`accounts.two_factor`, optional for customers)
is sent to the portal's code page until the session is past it. A customer who ticks "keep
me signed in" at sign-in keeps the session for 30 days (`REMEMBER`), else the site's default.

`layout` (a template context processor) gives error pages (403, 404) the layout of who
is looking: a customer sees the portal's bar, never the staff menu.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import roles, two_factor
from meters.models import Customer

SESSION_KEY = "ami_portal_customer"
REMEMBER = timedelta(days=30)
OPEN_PREFIXES = ("/portal/", "/login/", "/logout/", "/static/", "/healthz", "/favicon")
# What a customer who has a second factor reaches before entering a code.
UNVERIFIED_PREFIXES = ("/portal/account/two-factor/verify/", "/logout/", "/static/", "/healthz")
STAFF_LAYOUT, PORTAL_LAYOUT = "base.html", "portal/base.html"


def _lookup(user) -> bool:
    return (
        Customer.objects.filter(portal_user=user).exists()
        or user.groups.filter(name=roles.CUSTOMER).exists()
    )


def is_customer(request) -> bool:
    """Whether the signed-in user is a customer (remembered in the session)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    session = getattr(request, "session", None)
    if session is None:
        return _lookup(user)
    known = session.get(SESSION_KEY)
    if isinstance(known, list) and len(known) == 2 and known[0] == user.pk:
        return bool(known[1])
    answer = _lookup(user)
    session[SESSION_KEY] = [user.pk, answer]
    return answer


def signed_in(sender, request, user, **kwargs) -> None:
    """At sign-in (`user_logged_in`): the answer is written with the new session."""
    session = getattr(request, "session", None)
    if session is None:
        return
    customer = _lookup(user)
    session[SESSION_KEY] = [user.pk, customer]
    if customer and getattr(request, "POST", {}).get("remember"):
        session.set_expiry(REMEMBER)  # "keep me signed in on this phone"


def forget(session) -> None:
    """Ask again on the next request (the user was just linked to a customer record)."""
    session.pop(SESSION_KEY, None)


def refused(request):
    """The answer to a customer at a staff address."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "customers use the portal at /portal/, not the operator API"}, status=403
        )
    return render(request, "portal/staff_only.html", status=403)


class CustomerDoorMiddleware:
    """Keeps a customer's session inside the portal (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_customer(request):
            setattr(request, two_factor.DOOR_ATTRIBUTE, True)
            path = request.path
            if not path.startswith(UNVERIFIED_PREFIXES) and not two_factor.is_verified(request):
                return redirect(f"{reverse('portal:verify')}?{urlencode({'next': path})}")
            if path == "/":
                return redirect("portal:home")
            if not path.startswith(OPEN_PREFIXES):
                return refused(request)
        return self.get_response(request)


def layout(request) -> dict:
    """Template context: `layout`, the base template of whoever is looking."""
    return {"layout": PORTAL_LAYOUT if is_customer(request) else STAFF_LAYOUT}
