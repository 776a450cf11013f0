from django.apps import AppConfig


class LoadcontrolConfig(AppConfig):
    name = "loadcontrol"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Register the tasks in every process (an eager run in tests executes them in place).
        from . import tasks  # noqa: F401
