"""The API's router: DRF's DefaultRouter without `.json`-style format suffix routes.

Suffix routes passed a `format` argument into every custom action (`/api/runs/1/results.json`
answered 500 in actions that do not take it) and doubled every route for nothing the
`Accept` header and `?format=` do not already give.
"""

from rest_framework.routers import DefaultRouter


class ApiRouter(DefaultRouter):
    include_format_suffixes = False
