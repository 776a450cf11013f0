from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        import amisite.checks  # noqa: F401 (registers the project's own system checks)

        from . import access_cache, audit, roles, sessions

        # Roles need every app's permissions, which exist only after migrate.
        post_migrate.connect(roles.sync_roles, dispatch_uid="ami-sync-roles")
        audit.connect_auth_signals()
        # A grant given or taken closes the holder's sockets (accounts/sessions.py).
        sessions.connect_grant_signals()
        # Any change of roles, permissions, grants or organisations: cached access is stale.
        access_cache.connect_signals()
