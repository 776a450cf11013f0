"""Meter secrets are encrypted at rest and never shown or logged."""

import logging

import pytest
from django.db import connection
from rest_framework.test import APIClient

from meters.models import Meter

pytestmark = pytest.mark.django_db


def test_password_is_not_stored_in_clear(world):
    meter = world.grid_a.meters[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM meters_meterendpoint WHERE meter_id = %s", [meter.pk])
        raw = cursor.fetchone()[0]
    assert raw and "secret-pw-1" not in raw
    assert Meter.objects.get(pk=meter.pk).password == "secret-pw-1"


def test_secret_repr_never_shows_the_value(world, caplog):
    meter = Meter.objects.get(pk=world.grid_a.meters[0].pk)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("meter settings %r", meter.password)
    assert "secret-pw-1" not in caplog.text and "***" in caplog.text


def test_api_never_returns_secrets(world):
    client = APIClient()
    client.force_authenticate(world.engineer_a)
    body = client.get(f"/api/meters/{world.grid_a.meters[0].pk}/").content.decode()
    assert "secret-pw-1" not in body
    assert '"password":true' in body.replace(" ", "")


def test_high_security_needs_keys(world):
    client = APIClient()
    client.force_authenticate(world.engineer_a)
    response = client.patch(
        f"/api/meters/{world.grid_a.meters[0].pk}/",
        {"security": "high", "auth_key": "zz"},
        format="json",
    )
    assert response.status_code == 400
    assert "auth_key" in response.json()
