"""The project package as an app: management commands and process-wide wiring."""

from django.apps import AppConfig


class AmisiteConfig(AppConfig):
    name = "amisite"
    verbose_name = "AMI site"

    def ready(self):
        # Request and task ids in every log record; Celery task metrics (signal receivers).
        from . import observability

        observability.install_log_ids()
