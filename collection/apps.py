from django.apps import AppConfig


class CollectionConfig(AppConfig):
    name = "collection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Register the tasks in every process (web, commands, tests), not only in workers:
        # actions queue them by name (collection/enqueue.py), and an eager run needs the
        # task object to execute in place.
        from . import tasks  # noqa: F401
