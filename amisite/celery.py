"""The Celery application: queues `collect` and `default`, late acks, DB scheduler for beat."""

import os
import sys

from celery import Celery
from celery.signals import import_modules, task_postrun, task_prerun
from kombu import Queue

from .config import check_shared_broker

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


@import_modules.connect
def _refuse_memory_broker(**_kwargs):
    """Workers and beat (only they load task modules through this signal) on memory:// would
    wait forever for tasks no other process can send them: stop with one line saying what to set.
    """
    from django.core.exceptions import ImproperlyConfigured

    try:
        check_shared_broker(app.conf.broker_url or "", "a Celery worker or beat")
    except ImproperlyConfigured as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        os._exit(2)  # not SystemExit: Celery would print its traceback and shut down slowly
