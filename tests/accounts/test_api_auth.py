"""Token and session authentication of the API."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_token_authentication(world):
    client = APIClient()
    response = client.post("/api/token/", {"username": "operator-a", "password": "pw-operator-a"})
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    meters = client.get("/api/meters/")
    assert meters.status_code == 200
    assert {m["serial"] for m in meters.json()["results"]} == {
        m.serial for m in world.grid_a.meters
    }


def test_bad_token_is_refused(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/meters/").status_code == 401


def test_wrong_password_gets_no_token(world):
    response = APIClient().post("/api/token/", {"username": "operator-a", "password": "wrong"})
    assert response.status_code == 400
