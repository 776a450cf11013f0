"""API tokens expire, can be listed and revoked by their owner, and die with the password;
every user has a password page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.admin_forms import staff_client

pytestmark = pytest.mark.django_db


def _token(username, password) -> str:
    response = APIClient().post("/api/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _api(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _works(key) -> bool:
    status = _api(key).get("/api/meters/").status_code
    assert status in (200, 401), status
    return status == 200


def test_token_expires(world, settings):
    settings.AMI_TOKEN_HOURS = 1
    key = _token("operator-a", "pw-operator-a")
    token = ApiToken.objects.get()
    assert token.expires_at - timezone.now() <= timedelta(hours=1)
    assert _works(key)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not _works(key)


def test_only_a_hash_of_the_key_is_stored(world):
    key = _token("operator-a", "pw-operator-a")
    token = ApiToken.objects.get()
    assert key not in (token.key_hash, token.prefix) and token.prefix == key[:8]


def test_owner_lists_and_revokes_its_tokens_others_cannot(world):
    key = _token("operator-a", "pw-operator-a")
    other = _token("operator-a", "pw-operator-a")
    foreign = _token("operator-b", "pw-operator-b")
    api = _api(key)
    listed = api.get("/api/tokens/").json()["results"]
    assert len(listed) == 2 and all("key" not in row for row in listed)
    foreign_id = ApiToken.objects.get(user=world.operator_b).pk
    assert api.get(f"/api/tokens/{foreign_id}/").status_code == 404
    assert api.delete(f"/api/tokens/{foreign_id}/").status_code == 404
    assert _works(foreign)
    other_id = ApiToken.objects.filter(user=world.operator_a).order_by("pk").last().pk
    assert api.get(f"/api/tokens/{other_id}/").json()["active"] is True
    assert api.delete(f"/api/tokens/{other_id}/").status_code == 204
    assert not _works(other) and _works(key)
    # Signing out of the API: the token used for the request is revoked.
    assert api.delete("/api/token/").status_code == 204
    assert not _works(key)


def test_password_change_anywhere_ends_every_token(world):
    key = _token("operator-a", "pw-operator-a")
    root = staff_client(world.superuser)
    response = root.post(
        f"/admin/accounts/user/{world.operator_a.pk}/password/",
        {"password1": "Another-pass-42", "password2": "Another-pass-42"},
    )
    assert response.status_code == 302
    assert not _works(key)
    assert _works(_token("operator-a", "Another-pass-42"))


def test_every_user_has_a_password_page_that_ends_its_tokens(world):
    """A non-staff operator changes its own password; its session stays, its tokens go."""
    key = _token("operator-a", "pw-operator-a")
    client = Client()
    client.force_login(world.operator_a)
    page = client.get("/account/password/")
    assert page.status_code == 200
    response = client.post(
        "/account/password/",
        {
            "old_password": "pw-operator-a",
            "new_password1": "New-secret-pass-7",
            "new_password2": "New-secret-pass-7",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    assert client.get("/meters/").status_code == 200  # still signed in here
    assert not _works(key)
    signed_in = Client().post(
        "/login/", {"username": "operator-a", "password": "New-secret-pass-7"}
    )
    assert signed_in.status_code == 302


def test_token_page_issues_shows_once_and_revokes(world):
    client = Client()
    client.force_login(world.operator_a)
    issued = client.post("/account/tokens/", {"name": "billing export"})
    assert issued.status_code == 200
    key = issued.context["new_key"]
    assert _works(key)
    page = client.get("/account/tokens/")
    assert key not in page.content.decode() and "billing export" in page.content.decode()
    token = ApiToken.objects.get(user=world.operator_a)
    client.post("/account/tokens/", {"revoke": token.pk})
    assert not _works(key)
    # Another user's token cannot be revoked from this page.
    foreign = _token("operator-b", "pw-operator-b")
    foreign_id = ApiToken.objects.get(user=world.operator_b).pk
    assert client.post("/account/tokens/", {"revoke": foreign_id}).status_code == 404
    assert _works(foreign)


def test_deactivated_user_token_is_refused(world):
    key = _token("operator-a", "pw-operator-a")
    world.operator_a.is_active = False
    world.operator_a.save()
    assert not _works(key)
