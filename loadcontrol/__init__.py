"""Connect/disconnect commands, load-control schedules and limits."""
