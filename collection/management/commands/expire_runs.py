"""Close runs that cannot finish: past their window, or (at start) left open by a dead process."""

from django.core.management.base import BaseCommand

from collection import actions


class Command(BaseCommand):
    help = "Close runs past their window; with --interrupted, every open run (start-up only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interrupted",
            action="store_true",
            help="every open run was left by a process that died: close them all now (only "
            "before any worker starts, as make run does)",
        )

    def handle(self, *args, **options):
        if options["interrupted"]:
            count = actions.expire_interrupted_runs()
            if count:
                self.stdout.write(f"[ami] {count} run(s) left open by a stopped system: closed")
        else:
            count = actions.expire_runs()
            self.stdout.write(f"{count} run(s) past their window closed")
