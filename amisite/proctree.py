"""A process and its descendants, read from Linux /proc (stdlib only).

The launcher's checks (tests/amisite/test_launcher.py, .ci/launch_check.py) use it to see every
process of `make run` come up and to prove that none outlives a stop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

# A word of each Procfile process's command line: web, worker, beat, simulator, push listener.
PROCFILE_MARKERS = {
    "web": "amisite.serve",
    "worker": "worker",
    "beat": "amisite.beat",
    "simulator": "simulate_meters",
    "push": "listen_push",
    "bus": "modbus",  # simulate_meters --protocol modbus: the demo's Modbus line
    "optical": "iec62056-21",  # simulate_meters --protocol iec62056-21: its IEC 62056-21 line
}
SHELLS = {"sh", "bash", "dash"}


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def descendants(pid: int) -> set[int]:
    """All processes below pid (children of children too)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while pid runs (a zombie, exited but not yet reaped, counts as gone)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return raw.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def running_procfile(pid: int) -> set[str]:
    """Names of the Procfile processes running below pid (the processes, not their shells)."""
    argvs = [cmdline(child).split() for child in descendants(pid)]
    argvs = [argv for argv in argvs if argv and os.path.basename(argv[0]) not in SHELLS]
    return {
        name for name, marker in PROCFILE_MARKERS.items() if any(marker in argv for argv in argvs)
    }


def wait_until(condition: Callable[[], object], seconds: float, step: float = 0.2) -> bool:
    """Poll condition until it is true or seconds pass; its last answer."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(step)


def survivors(pids: Iterable[int], seconds: float) -> list[int]:
    """The pids still alive after waiting up to seconds for all of them to exit."""
    pids = list(pids)
    wait_until(lambda: not any(alive(pid) for pid in pids), seconds)
    return [pid for pid in pids if alive(pid)]
