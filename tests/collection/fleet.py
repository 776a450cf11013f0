"""A simulator fleet started wholly on its own thread (safe beside Playwright's event loop)."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager

from collection.simulators.dlms_fleet import DlmsFleet


@contextmanager
def fleet_thread(meters, fleet_class=DlmsFleet, **kwargs):
    """`fleet_class` (DLMS by default, or e.g. the Modbus fleet) serving `meters`."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fleet", daemon=True)
    thread.start()
    fleet = fleet_class(meters, **kwargs)
    asyncio.run_coroutine_threadsafe(fleet.start(), loop).result(10)
    try:
        yield fleet
    finally:
        asyncio.run_coroutine_threadsafe(fleet.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
