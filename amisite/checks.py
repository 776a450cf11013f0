"""System checks of the project's own conventions (run by `manage.py check`, so `make test`)."""

from __future__ import annotations

import re

from django.apps import apps
from django.core import checks

PROJECT_APPS = {"accounts", "meters", "collection", "loadcontrol", "reports", "vending", "portal"}
# Names whose plural is not name + "s": status, box, quiz, batch, dish, energy, delivery...
IRREGULAR_PLURAL = re.compile(r"(s|x|z|ch|sh|[^aeiou]y)$")


@checks.register(checks.Tags.models)
def plural_names(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every model whose name Django would pluralise wrongly ("comm statuss") names its plural."""
    configs = app_configs or apps.get_app_configs()
    problems = []
    for config in configs:
        if config.label not in PROJECT_APPS:
            continue
        for model in config.get_models():
            meta = model._meta
            name = str(meta.verbose_name)
            if "verbose_name_plural" not in meta.original_attrs and IRREGULAR_PLURAL.search(name):
                problems.append(
                    checks.Warning(
                        f"{meta.label}: the plural of {name!r} would be shown as "
                        f"{str(meta.verbose_name_plural)!r}",
                        hint="set Meta.verbose_name_plural",
                        obj=model,
                        id="amisite.W001",
                    )
                )
    return problems
