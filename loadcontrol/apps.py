from django.apps import AppConfig


class LoadcontrolConfig(AppConfig):
    name = "loadcontrol"
    default_auto_field = "django.db.models.BigAutoField"
