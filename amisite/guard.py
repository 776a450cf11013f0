"""Run a command that dies with its parent: `python -m amisite.guard CMD ARGS...`.

The supervisor starts every process through this, so that killing the supervisor, even with
SIGKILL, leaves no stray web server, worker or Redis behind (Linux PR_SET_PDEATHSIG, which
survives exec).
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m amisite.guard COMMAND [ARGS...]")
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(1)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
