"""The command queue: every change to a meter is a `MeterCommand` with a life.

queued -> sent -> confirmed (the meter's read-back says so) / failed / expired / cancelled.
`kinds` says what each kind takes and how its read-back confirms it (no Django), `session`
runs a bundle of one meter's commands through its protocol driver (no Django), `actions`
queues, claims, records and expires them (the database side), `models` holds the row.
"""
