"""The sign-in page keeps the user name after a wrong password; the lockout page is a page."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_wrong_password_keeps_the_user_name(world):
    response = Client().post("/login/", {"username": "operator-a", "password": "wrong"})
    html = response.content.decode()
    assert response.status_code == 200 and 'value="operator-a"' in html
    assert "autofocus" in html.split('id="id_password"')[1].split(">")[0]


def test_the_lockout_is_shown_in_the_apps_layout(world, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "operator-a", "password": "wrong"})
    response = client.post("/login/", {"username": "operator-a", "password": "wrong"})
    html = response.content.decode()
    assert response.status_code == 429
    assert 'class="topbar"' in html and "css/ami.css" in html and 'id="locked"' in html
    assert "operator-a" in html and "15 minutes" in html


def test_durations_read_as_words():
    from datetime import timedelta

    from amisite.display import duration

    assert duration(timedelta(minutes=15)) == "15 minutes"
    assert duration(timedelta(hours=2, minutes=1)) == "2 hours 1 minute"
    assert duration(timedelta(seconds=45)) == "45 seconds"
