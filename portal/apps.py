"""The customer portal: bills, usage graphs and outage notices."""

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in


class PortalConfig(AppConfig):
    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import door  # models are loaded only now

        user_logged_in.connect(door.signed_in, dispatch_uid="portal-door-signed-in")
