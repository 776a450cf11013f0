"""Queue collection's Celery tasks by name (after commit, from actions).

Tasks are thin wrappers around actions (collection/tasks.py imports actions); actions start
tasks through these functions, which name the task instead of importing it, so neither module
needs the other. The queue comes from settings' `CELERY_TASK_ROUTES` whether the task object
is known here or not; `CollectionConfig.ready` registers the tasks in every process, so an
eager run (tests) executes them in place, as `.delay()` on the task object would.
"""

from __future__ import annotations

from celery import current_app

READ_BATCH = "collection.read_batch"
PROBE_CONCENTRATORS = "collection.probe_concentrators"
HANDLE_PUSH = "collection.handle_push"


def probe_concentrators() -> None:
    """Every concentrator's own status and meter list now (the beat's every 15 minutes)."""
    current_app.signature(PROBE_CONCENTRATORS).apply_async()


def read_batch(run_id: int, meter_ids: list[int], queue: str | None = None) -> None:
    """One batch of a run: `collection.tasks.read_batch_task(run_id, meter_ids)`, on `queue`
    (`collection.queues`; None: the route of `CELERY_TASK_ROUTES`, `collect`)."""
    options = {"queue": queue} if queue else {}
    current_app.signature(READ_BATCH, args=(run_id, meter_ids)).apply_async(**options)


def handle_push(
    meter_id: int, events: list[dict], counter: dict | None = None, received: float | None = None
) -> None:
    """One push's events, from the listener: `collection.push_tasks.handle_push`
    (`received`: the listener's wall clock at arrival, for the push latency metric)."""
    kwargs = {"counter": counter} | ({"received": received} if received is not None else {})
    current_app.signature(HANDLE_PUSH, args=(meter_id, events), kwargs=kwargs).apply_async()


EXECUTE_COMMANDS = "collection.execute_commands"


EXECUTE_COMMAND_BATCH = "collection.execute_command_batch"


def _command_options(priority: int | None, countdown: float) -> dict:
    options = {"countdown": countdown} if countdown else {}
    if priority is not None:
        # Redis (the broker) serves 0 first: an emergency command (9) is sent as 0.
        options["priority"] = max(0, 9 - priority)
    return options


def execute_commands(meter_id: int, *, priority: int | None = None, countdown: float = 0) -> None:
    """A session for one meter's queued commands: `collection.tasks.execute_commands_task`."""
    options = _command_options(priority, countdown)
    current_app.signature(EXECUTE_COMMANDS, args=(meter_id,)).apply_async(**options)


def execute_command_batch(
    meter_ids: list[int],
    *,
    priority: int | None = None,
    countdown: float = 0,
    task_id: str | None = None,
) -> None:
    """Sessions for many meters' queued commands in one task:
    `collection.tasks.execute_command_batch_task`. `task_id`: a lost task's own id again
    (its claim), so the new task finishes what that one had sent instead of sending again."""
    options = _command_options(priority, countdown)
    if task_id:
        options["task_id"] = task_id
    current_app.signature(EXECUTE_COMMAND_BATCH, args=(meter_ids,)).apply_async(**options)
