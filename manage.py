#!/usr/bin/env python
"""Django's command-line utility for the AMI head-end."""

import os
import sys


def field_tool(argv: list[str]) -> int | None:
    """Run a field tool that touches no database and no secret without Django's settings, so
    it needs no SECRET_KEY, AMI_SECRETS_KEY or DATABASE_URL: `read_meter --url ...` (a meter
    not in the database) and `sts encode|decode ...`. None for every other command."""
    command, rest = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if command == "read_meter" and (not rest or rest[0].startswith("-")):
        from collection.protocols.cli import main as read_meter

        return read_meter(rest)
    if command == "sts":
        from vending.sts.cli import main as sts

        return sts(rest, stdout=sys.stdout)
    return None


def main():
    code = field_tool(sys.argv)
    if code is not None:
        sys.exit(code)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # Bad configuration is one clear line, not a stack trace.
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
