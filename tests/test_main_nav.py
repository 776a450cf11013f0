"""The main menu is kept per kind of user (amisite/nav_tags.py): each user still sees exactly
the menu their permissions give, whoever's menu was kept before, and a permission given or
taken shows on their next page."""

from __future__ import annotations

import pytest
from django.contrib.auth.context_processors import PermWrapper
from django.contrib.auth.models import Permission
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from accounts.models import User
from amisite import nav_tags

pytestmark = pytest.mark.django_db


def two_factor_client(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _nav(html: str) -> str:
    return html.split('<nav class="mainnav"')[1].split("</nav>")[0]


def _menu_as_rendered_fresh(user) -> str:
    return _nav(render_to_string("nav.html", {"user": user, "perms": PermWrapper(user)}))


def test_every_user_gets_the_menu_of_their_own_permissions(world):
    users = [world.superuser, world.admin_a, world.engineer_a, world.readonly_a,
             world.operator_a, world.operator_b, world.admin_b]  # fmt: skip
    nav_tags._menus.clear()
    menus = {}
    for _ in range(2):  # the second round is served from the kept menus
        for user in users:
            page = two_factor_client(user).get("/")
            assert page.status_code == 200
            menus.setdefault(user.username, set()).add(_nav(page.content.decode()))
    for user in users:
        user.refresh_from_db()
        assert menus[user.username] == {_menu_as_rendered_fresh(user)}, user.username
    assert "Admin</a>" in _nav(two_factor_client(world.admin_a).get("/").content.decode())
    assert "Admin</a>" not in _nav(two_factor_client(world.operator_a).get("/").content.decode())
    assert len(set().union(*menus.values())) >= 2  # roles do see different menus


def test_a_permission_given_or_taken_shows_on_the_next_page(world):
    clerk = User.objects.create_user("no-role", organisation=world.org_a)
    browser = two_factor_client(clerk)
    assert "File exchange</a>" not in _nav(browser.get("/").content.decode())
    exchange = Permission.objects.get(codename="view_exchangelog")
    clerk.user_permissions.add(exchange)
    assert "File exchange</a>" in _nav(browser.get("/").content.decode())
    clerk.user_permissions.remove(exchange)
    assert "File exchange</a>" not in _nav(browser.get("/").content.decode())


def test_kept_menus_are_bounded(world, monkeypatch):
    monkeypatch.setattr(nav_tags, "MENUS_KEPT", 2)
    nav_tags._menus.clear()
    for user in (world.admin_a, world.operator_a, world.engineer_a, world.superuser):
        assert two_factor_client(user).get("/").status_code == 200
        assert len(nav_tags._menus) <= 2


def test_a_signed_out_page_has_no_menu():
    html = Client().get(reverse("login")).content.decode()
    assert 'class="mainnav"' not in html
