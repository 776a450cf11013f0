"""Fixtures the report engine's tests share: the tamper report's fleet
(tests/reports/test_tamper.py), the loopback SMTP server and eager Celery of the alarm
notifications' tests, and a private MEDIA_ROOT for the files runs write."""

import pytest

from tests.meters.alarms.test_notifications import eager, smtp
from tests.reports.test_tamper import fleet

__all__ = ["eager", "fleet", "media", "smtp"]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path
