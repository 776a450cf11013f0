"""Template filters for every page (a builtin library: no `{% load %}` needed).

`{{ dt|when }}`, `{{ dt|when_s }}` (with seconds), `{{ value|quantity:unit }}`,
`{{ kwh|energy_kwh }}`, `{{ amount|money }}`, `{{ amount|money:currency }}`,
`{{ timedelta|duration }}`.
"""

from django import template

from . import display

register = template.Library()


@register.filter
def when(value):
    return display.when(value)


@register.filter
def when_s(value):
    return display.when(value, seconds=True)


@register.filter
def quantity(value, unit=""):
    return display.quantity(value, unit)


@register.filter
def energy_kwh(value):
    return display.energy_kwh(value)


@register.filter
def money(value, currency=""):
    return display.money(value, currency)


@register.filter
def duration(value):
    return display.duration(value)
