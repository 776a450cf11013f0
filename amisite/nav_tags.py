"""The operators' main menu, rendered once per kind of user instead of on every page.

The menu (templates/nav.html) is 28 links, most behind a permission: on the home page its
`{% url %}` reversals and permission checks were a third of the page's rendering. What it
shows depends only on the site's URL prefix and on the user's active, superuser and staff
flags and model permissions (`User.has_perm` without an object is decided by those), so it
is kept per those and rendered again for any other combination: a user given or losing a
permission gets the menu of their new permissions on their next page.
"""

from __future__ import annotations

from django import template
from django.contrib.auth.context_processors import PermWrapper
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils.safestring import mark_safe

register = template.Library()
MENUS_KEPT = 256  # kinds of users; past this the kept menus are dropped and made again
_menus: dict[tuple, str] = {}


def menu_key(user) -> tuple:
    """Everything the menu's HTML depends on."""
    return (
        get_script_prefix(),
        user.is_active,
        user.is_superuser,
        user.is_staff,
        frozenset(user.get_all_permissions()),
    )


@register.simple_tag(takes_context=True)
def main_nav(context) -> str:
    user = context["user"]
    key = menu_key(user)
    html = _menus.get(key)
    if html is None:
        if len(_menus) >= MENUS_KEPT:
            _menus.clear()
        # Escaped by the template engine as it rendered; kept as the finished HTML.
        html = _menus[key] = render_to_string(
            "nav.html", {"user": user, "perms": PermWrapper(user)}
        )
    return mark_safe(html)
