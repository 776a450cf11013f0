"""`manage.py read_meter [SERIAL] --what ... [--json]`: read one meter now and print JSON.

With a SERIAL, the registered meter's stored settings are used (secrets included, never
printed); without one, everything comes from the options (`--url tcp://HOST:PORT` ...), for
meters that are not in the database.
"""

from __future__ import annotations

import asyncio
import json
import sys

from django.core.management.base import BaseCommand

from accounts import audit
from collection.counters import DatabaseCounterStore
from collection.protocols import cli
from collection.protocols.errors import ProtocolError
from collection.targets import TARGET_RELATED, NotReadable, session_settings
from meters.models import Meter


class Command(BaseCommand):
    help = "Read a meter now (registered: read_meter SERIAL ...; unregistered: --url ...)."

    def run_from_argv(self, argv):
        # The options are the protocol CLI's own; Django's parser would only get in the way.
        sys.exit(self.read(argv[2:]))

    def read(self, args: list[str]) -> int:
        if args and not args[0].startswith("-"):
            serial, rest = args[0], args[1:]
            meter = Meter.objects.select_related(*TARGET_RELATED).filter(serial=serial).first()
            if meter is None:
                print(f"read_meter: no meter with serial {serial!r}", file=sys.stderr)
                return 2
            try:
                settings = session_settings(
                    meter, exchange_log="--log-frames" in rest, reading=True
                )
            except NotReadable as exc:
                print(f"read_meter: {exc}", file=sys.stderr)
                return 2
            parsed = cli.build_parser().parse_args([*rest, "--url", settings.url])
            try:
                result = asyncio.run(cli.run(parsed, settings, DatabaseCounterStore()))
            except ProtocolError as exc:
                retry = "retryable" if exc.retryable else "permanent"
                print(f"read_meter: {type(exc).__name__} ({retry}): {exc}", file=sys.stderr)
                audit.record(
                    "read_meter", obj=meter, username="manage.py", outcome="failed", detail=str(exc)
                )
                return 2
            except ValueError as exc:
                print(f"read_meter: invalid argument: {exc}", file=sys.stderr)
                return 2
            audit.record(
                "read_meter", obj=meter, username="manage.py", changes={"what": parsed.what}
            )
            print(json.dumps(cli.to_jsonable(result), indent=2, sort_keys=True))
            return 0
        return cli.main(args)
