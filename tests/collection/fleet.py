"""A simulator fleet started wholly on its own thread (safe beside Playwright's event loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

from collection.simulators.dlms_fleet import DlmsFleet


@contextmanager
def fleet_thread(meters, fleet_class=DlmsFleet, *, pty: bool = False, **kwargs):
    """`fleet_class` (DLMS by default, or e.g. the Modbus fleet) serving `meters`; on a
    pseudo-terminal (`fleet.pty_path`) instead of TCP when `pty`."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fleet", daemon=True)
    thread.start()
    fleet = fleet_class(meters, **kwargs)
    start = fleet.start_pty() if pty else fleet.start()
    asyncio.run_coroutine_threadsafe(start, loop).result(10)
    try:
        yield fleet
    finally:
        asyncio.run_coroutine_threadsafe(fleet.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def away_from_a_quarter_hour() -> None:
    """Energy registers step at quarter-hours: keep a read and its timestamp on one side."""
    now = datetime.now(UTC)
    left = 900 - (now.minute % 15 * 60 + now.second)
    if left < 20:
        time.sleep(left + 1)
