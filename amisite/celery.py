"""The Celery application: queues `collect` and `default`, late acks, DB scheduler for beat."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")

app = Celery("amisite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("collect"))
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _drop_stale_connections(**_kwargs):
    """Close connections past their age or broken by a database restart, around every task."""
    from django.db import close_old_connections

    close_old_connections()
