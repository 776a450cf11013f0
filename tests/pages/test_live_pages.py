"""Live pages stop watching when what they watch is finished (no reload loops).

A run that partly failed used to reload its page for ever: the script compared the label
"Partly failed" with the status "partial". Counted here in real Chromium: page loads and
websockets opened.
"""

import pytest
from django.utils import timezone

from collection.choices import RunKind, RunStatus
from collection.models import JobRun
from collection.progress import publish_run
from reports.models import ExportJob, ExportStatus
from tests.pages.browser import in_worker_thread, sign_in, watch

pytestmark = pytest.mark.browser


def runs_watched(seen):
    return [url for url in seen.websockets if "/ws/runs/" in url]


def make_run(world, status, **counts):
    return JobRun.objects.create(
        organisation=world.org_a, kind=RunKind.ON_DEMAND, status=status, **counts
    )


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED])
def test_a_finished_run_is_not_watched(world, asgi_server, page, status):
    run = make_run(world, status, total=2, done=2, succeeded=1, failed=1)
    sign_in(page, asgi_server, "operator-a")
    seen = watch(page)
    page.goto(f"{asgi_server}/runs/{run.pk}/")
    page.wait_for_function(
        "() => document.getElementById('run-progress').dataset.watch === 'finished'"
    )
    assert runs_watched(seen) == []  # nothing opened, so nothing can trigger a reload
    assert len(seen.loads) == 1
    assert page.locator("#run-status").inner_text() == run.get_status_display()


def test_a_run_that_finishes_while_watched_reloads_once(world, asgi_server, page):
    run = make_run(world, RunStatus.RUNNING, total=2, done=1, succeeded=1)
    sign_in(page, asgi_server, "operator-a")
    seen = watch(page)
    page.goto(f"{asgi_server}/runs/{run.pk}/")
    page.wait_for_function("() => document.getElementById('run-progress').dataset.watch === 'live'")
    page.wait_for_function(
        "() => document.getElementById('run-status').dataset.status === 'running'"
    )

    def finish():
        JobRun.objects.filter(pk=run.pk).update(
            status=RunStatus.PARTIAL, done=2, failed=1, finished_at=timezone.now()
        )
        publish_run(run.pk)  # autocommit: sent at once

    in_worker_thread(finish)
    page.wait_for_function(
        "() => document.getElementById('run-progress').dataset.watch === 'finished'"
        " && document.getElementById('run-status').textContent.trim() === 'Partly failed'"
        " && performance.getEntriesByType('navigation')[0].type === 'reload'"
    )
    assert len(seen.loads) == 2
    assert len(runs_watched(seen)) == 1  # the reloaded, finished page opened none


def test_a_finished_export_is_not_polled(world, asgi_server, page):
    job = ExportJob.objects.create(
        organisation=world.org_a, requested_by=world.operator_a, status=ExportStatus.FAILED,
        fmt="csv", error="disk full",
    )  # fmt: skip
    sign_in(page, asgi_server, "operator-a")
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "/status" in r.url else None)
    page.goto(f"{asgi_server}/reports/exports/{job.pk}/")
    page.wait_for_function(
        "() => document.getElementById('export-job').dataset.watch === 'finished'"
    )
    assert polls == []
