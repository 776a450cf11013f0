"""`manage.py db_capacity`: this machine's connection plan against PostgreSQL's max_connections."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from amisite import capacity


class Command(BaseCommand):
    help = (
        "Print the database connections each process of this machine may hold (from the cores "
        "and AMI_* / DB_POOL_* variables) and how many such machines PostgreSQL can serve."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--headroom",
            type=int,
            default=10,
            help="connections kept free for migrations, commands, backups, psql (default 10)",
        )
        parser.add_argument(
            "--machines", type=int, default=1, help="machines running this plan (default 1)"
        )

    def handle(self, *args, headroom: int, machines: int, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("SQLite: one file, no connection limit to plan for.")
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('max_connections')::int, "
                "current_setting('superuser_reserved_connections')::int"
            )
            max_connections, reserved = cursor.fetchone()
        plan = capacity.plan()
        self.stdout.write(f"cores: {capacity.cores()}")
        for name, count, each in plan.rows():
            self.stdout.write(f"  {name:24s} {count:3d} x {each:3d} = {count * each:4d}")
        self.stdout.write(f"  {'this machine':24s} {plan.total:16d}")
        usable = max_connections - reserved - headroom
        fit = capacity.machines_that_fit(max_connections, reserved, headroom, plan)
        self.stdout.write(
            f"PostgreSQL: max_connections {max_connections} - reserved {reserved} - "
            f"headroom {headroom} = {usable} usable: room for {fit} such machine(s)"
        )
        if machines > fit:
            raise CommandError(
                f"{machines} machine(s) x {plan.total} connections exceed the {usable} usable: "
                "lower AMI_WEB_THREADS / AMI_WEB_WORKERS / AMI_WORKER_CONCURRENCY or raise "
                "max_connections"
            )
