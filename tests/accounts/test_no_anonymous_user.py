"""django-guardian's "AnonymousUser" is never a user anyone can pick or see.

Generated over the admin registry: every add form (inline forms included) and every user
list a superuser sees, which would show every user there is."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

NAME = "AnonymousUser"


def admin_pages():
    for model in admin.site._registry:
        for view in ("add", "changelist"):
            try:
                yield reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}")
            except NoReverseMatch:
                continue


def test_no_anonymous_user_row_after_migrations():
    assert not User.objects.filter(username=NAME).exists()


def test_no_admin_page_offers_or_lists_it(world):
    web = Client()
    web.force_login(world.superuser)
    pages = list(admin_pages())
    assert len(pages) > 20
    for url in pages:
        response = web.get(url)
        assert response.status_code in (200, 403), url
        assert NAME not in response.content.decode(), url
    for url in ("/api/users/", "/users/"):
        response = web.get(url)
        assert NAME not in response.content.decode(), url


def test_the_migration_removes_an_existing_one(world):
    """Databases made before: guardian had created the row; the migration deletes it only."""
    guardian_row = User(username=NAME)
    guardian_row.set_unusable_password()
    guardian_row.save()
    person = User.objects.create_user("AnonymousUser2", password="pw-x", organisation=world.org_a)
    migration = importlib.import_module("accounts.migrations.0005_no_guardian_anonymous_user")
    migration.remove_anonymous_user(apps, None)
    assert not User.objects.filter(username=NAME).exists()
    assert User.objects.filter(pk=person.pk).exists()
