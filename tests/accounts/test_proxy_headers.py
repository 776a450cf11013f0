"""X-Forwarded-Proto is believed only from the proxies named in AMI_TRUSTED_PROXIES."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _get(**meta):
    return Client(REMOTE_ADDR="127.0.0.1", **meta).get("/healthz")


def test_a_client_cannot_pass_for_https_by_sending_the_header(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.AMI_TRUSTED_PROXIES = []
    assert _get().status_code == 301
    # Nobody is trusted: the header is dropped and the plain request is still redirected.
    assert _get(HTTP_X_FORWARDED_PROTO="https").status_code == 301
    settings.AMI_TRUSTED_PROXIES = [ipaddress.ip_network("10.9.9.9/32")]
    assert _get(HTTP_X_FORWARDED_PROTO="https").status_code == 301  # another proxy's


def test_a_named_proxy_says_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.AMI_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]
    assert _get(HTTP_X_FORWARDED_PROTO="https").status_code != 301
    assert _get().status_code == 301
