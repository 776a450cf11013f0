"""The web process: `python -m amisite.serve` runs uvicorn sized from the machine.

`AMI_WEB_WORKERS` processes (default: the cores), each letting `AMI_WEB_THREADS` requests
into Django at once (`amisite.webgate`), on `AMI_HOST`:`AMI_PORT`; told to stop, a worker
closes what is still open after `AMI_WEB_SHUTDOWN_SECONDS` (websockets never end by
themselves); what a worker keeps for good is frozen out of the garbage collector's full
collections once it has warmed up, and again every `AMI_GC_REFREEZE_SECONDS`
(`amisite.gcpolicy`). `make run` and
production start the web the same way; extra arguments go to uvicorn as they are.
Proxy headers are not uvicorn's business here: name the proxies in `AMI_TRUSTED_PROXIES`.
"""

from __future__ import annotations

import os
import sys

from amisite import capacity, gcpolicy
from amisite.guard import die_with_parent


def application():
    """uvicorn's factory, called in each worker process: it dies with the uvicorn master, and
    its long-lived objects are frozen out of the garbage collector's walks (amisite.gcpolicy)."""
    die_with_parent()
    from amisite.asgi import application as app
    from amisite.asgi import warmed_up

    gcpolicy.start(warmed_up)
    return app


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
    os.environ["AMI_PROCESS"] = "web"  # this process's pool size follows from it
    workers = capacity.web_workers()
    args = [
        "amisite.serve:application", "--factory",
        "--host", os.environ.get("AMI_HOST", "127.0.0.1"),
        "--port", os.environ.get("AMI_PORT", "8000"),
        "--workers", str(workers),
        "--no-access-log",
        "--lifespan", "off",  # Channels' router has no lifespan protocol
        # The client address is the application's decision (AMI_TRUSTED_PROXIES), never
        # uvicorn's, which by default believes X-Forwarded-For from loopback.
        "--no-proxy-headers",
        # Without a limit a worker told to stop waits for every open websocket to close,
        # which a browser never does by itself: workers outlived a killed master.
        "--timeout-graceful-shutdown", str(capacity.web_shutdown_seconds()),
        *argv,
    ]  # fmt: skip
    print(
        f"[web] {workers} uvicorn workers x {capacity.web_threads()} requests in Django "
        f"at once, database pool {capacity.pool_max('web')} per worker",
        flush=True,
    )
    import uvicorn.main

    sys.argv = ["uvicorn", *args]
    uvicorn.main.main()


if __name__ == "__main__":
    main(sys.argv[1:])
