#!/usr/bin/env python
"""Django's command-line utility for the AMI head-end."""

import os
import sys


def main():
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
