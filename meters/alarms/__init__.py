"""Events, alarm rules, alarms, outages and notifications: a package of the `meters` app.

Its models are `meters` models (app label and table names unchanged), imported by name in
meters/models.py. Layers, lowest first: `events` (what a meter's event codes mean), `models`,
`consumers` (live pushes), `notifications` (who hears of an alarm, and its two tasks),
`actions` (raise, acknowledge, clear), `engine` (events -> alarms, derived events, outages),
`tasks`; then the pages (`views`, `urls`), `api` and `admin`.
"""
