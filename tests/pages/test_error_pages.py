"""404, 403 and 500 answer in the app's layout (with the policy), not Django's bare text."""

import pytest
from django.test import Client
from django.urls import path

from amisite.csp import HEADER
from amisite.urls import urlpatterns as root_patterns

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("planted failure")


urlpatterns = [*root_patterns, path("boom/", boom)]


def in_layout(response, marker):
    html = response.content.decode()
    return 'class="topbar"' in html and "css/ami.css" in html and marker in html


def test_not_found_and_forbidden_are_pages(world):
    client = Client()
    client.force_login(world.operator_a)
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and in_layout(missing, 'id="error-404"')
    assert missing[HEADER]
    client.force_login(world.readonly_a)
    forbidden = client.get("/jobs/new/")  # a read-only analyst may not define read jobs
    assert forbidden.status_code == 403 and in_layout(forbidden, 'id="error-403"')


@pytest.mark.urls(__name__)
def test_a_server_error_is_a_page(world, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(world.operator_a)
    response = client.get("/boom/")
    assert response.status_code == 500 and in_layout(response, 'id="error-500"')
    assert "planted failure" not in response.content.decode()
