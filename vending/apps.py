from django.apps import AppConfig


class VendingConfig(AppConfig):
    name = "vending"
    default_auto_field = "django.db.models.BigAutoField"
