"""Sign-in lockout: per user across addresses, per address across users, no header games."""

from __future__ import annotations

import ipaddress

import pytest
import requests
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ActivityLog
from tests.factories import make_user

pytestmark = pytest.mark.django_db

LIMIT = 5


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AMI_TRUSTED_PROXIES = []


def _login(username, password, **meta):
    return Client(**meta).post("/login/", {"username": username, "password": password})


def _signed_in(response) -> bool:
    return response.status_code == 302


def test_one_guess_each_against_many_users_from_one_address_is_throttled(world):
    users = [make_user(f"user-{i}", world.org_a) for i in range(20)]
    for user in users[:LIMIT]:
        assert not _signed_in(_login(user.username, "guess", REMOTE_ADDR="198.51.100.9"))
    # The address is locked now, whoever it tries, even with the right password.
    assert not _signed_in(_login("user-19", "pw-user-19", REMOTE_ADDR="198.51.100.9"))
    assert _signed_in(_login("user-19", "pw-user-19", REMOTE_ADDR="198.51.100.10"))


def test_rotating_addresses_against_one_user_is_throttled(world):
    for i in range(LIMIT):
        assert not _signed_in(_login("operator-a", "guess", REMOTE_ADDR=f"203.0.113.{i + 1}"))
    assert not _signed_in(_login("operator-a", "pw-operator-a", REMOTE_ADDR="203.0.113.99"))


def test_forwarded_for_from_an_untrusted_peer_is_ignored(world):
    """Loopback is no proxy unless configured: rotating X-Forwarded-For changes nothing."""
    for i in range(LIMIT):
        _login(f"nobody-{i}", "guess", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    locked = _login(
        "operator-a", "pw-operator-a", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert not _signed_in(locked)
    assert set(
        ActivityLog.objects.filter(action="login_failed").values_list("ip_address", flat=True)
    ) == {"127.0.0.1"}


def test_forwarded_for_from_a_named_proxy_is_believed(world, settings):
    settings.AMI_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]
    meta = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.44, 127.0.0.1"}
    assert _signed_in(_login("operator-a", "pw-operator-a", **meta))
    assert ActivityLog.objects.get(action="login").ip_address == "192.0.2.44"
    # Behind the proxy each client is counted apart: another client's guesses lock only it.
    for i in range(LIMIT):
        _login(f"x{i}", "guess", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.66")
    assert _signed_in(_login("engineer-a", "pw-engineer-a", **meta))


def test_a_success_between_guesses_does_not_clear_the_address(world):
    for i in range(LIMIT - 1):
        _login(f"victim-{i}", "guess", REMOTE_ADDR="198.51.100.20")
    assert _signed_in(_login("operator-a", "pw-operator-a", REMOTE_ADDR="198.51.100.20"))
    _login("victim-9", "guess", REMOTE_ADDR="198.51.100.20")
    assert not _signed_in(_login("engineer-a", "pw-engineer-a", REMOTE_ADDR="198.51.100.20"))


def test_token_endpoint_says_locked(world):
    client = APIClient(REMOTE_ADDR="198.51.100.30")
    for _ in range(LIMIT):
        response = client.post("/api/token/", {"username": "operator-a", "password": "guess"})
        assert response.status_code == 400
    response = client.post("/api/token/", {"username": "operator-a", "password": "pw-operator-a"})
    assert response.status_code == 403
    assert "locked" in response.json()["detail"]


def test_real_server_ignores_forwarded_for_from_loopback(asgi_server, world, settings):
    """Through uvicorn as `amisite.serve` runs it: the peer is loopback, the header is noise."""
    for i in range(LIMIT):
        requests.post(
            f"{asgi_server}/api/token/",
            data={"username": "operator-a", "password": "guess"},
            headers={"X-Forwarded-For": f"10.1.1.{i}"},
            timeout=10,
        )
    response = requests.post(
        f"{asgi_server}/api/token/",
        data={"username": "operator-a", "password": "pw-operator-a"},
        headers={"X-Forwarded-For": "10.1.1.200"},
        timeout=10,
    )
    assert response.status_code == 403 and "locked" in response.json()["detail"]
