"""Collection's part of the demo utility (meters/demo.py): read jobs and the meters' push keys.

The demo meters are the simulated fleet's (`manage.py simulate_meters --scenario demo`), so
they are registered with the simulator's TEST keys and system titles: the push listener then
knows who sends a ciphered alarm and can check its tag. Reads stay unciphered (security
"none", the public client), as before.
"""

from __future__ import annotations

from meters.models import MeterEndpoint

from .models import ReadJob
from .scheduling import sync_schedule
from .simulators.dlms_fleet import default_auth_key, default_block_key, default_system_title

DEMO_ITEMS = ["clock", "registers", "profile", "events"]


def load_demo_collection(demo) -> None:
    """Read each region every 15 minutes; give every demo meter its push identity."""
    for org in demo.regions.values():
        job = ReadJob.objects.create(
            name=f"{org.name}: every 15 minutes",
            organisation=org,
            items=DEMO_ITEMS,
            crontab="*/15 * * * *",
            window_minutes=14,
            retries=1,
            retry_backoff_s=2,
        )
        sync_schedule(job)
    endpoints = list(
        MeterEndpoint.objects.filter(
            meter__organisation__path__startswith=demo.utility.path
        ).select_related("meter")
    )
    for endpoint in endpoints:
        serial = endpoint.meter.serial
        endpoint.system_title = default_system_title(serial).hex()
        endpoint.auth_key = default_auth_key(serial).hex()
        endpoint.block_key = default_block_key(serial).hex()
    MeterEndpoint.objects.bulk_update(endpoints, ["system_title", "auth_key", "block_key"])
