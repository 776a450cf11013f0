"""Every model of the project names its plural properly ("Comm statuss" was in the admin)."""

from django.apps import apps
from django.db import models

from amisite.checks import plural_names


def test_no_model_would_be_pluralised_wrongly():
    assert plural_names() == []


def test_the_check_catches_a_name_pluralised_wrongly():
    class Status(models.Model):  # noqa: DJ008
        class Meta:
            app_label = "collection"
            verbose_name = "comm status"

    class Box(models.Model):  # noqa: DJ008
        class Meta:
            app_label = "collection"
            verbose_name = "meter box"
            verbose_name_plural = "meter boxes"  # named: fine

    try:
        found = plural_names([apps.get_app_config("collection")])
        assert [w.obj for w in found] == [Status]
        assert "'comm statuss'" in found[0].msg
    finally:
        for name in ("status", "box"):
            apps.all_models["collection"].pop(name, None)
        apps.clear_cache()
