"""Collection's part of the demo utility (meters/demo.py): read jobs and the meters' push keys.

The demo meters are the simulated fleet's (`manage.py simulate_meters --scenario demo`), so
they are registered with the simulator's TEST keys and system titles: the push listener then
knows who sends a ciphered alarm and can check its tag. Reads stay unciphered: the customer
meters as the low-security client 17 with the simulator's TEST password (so connect and
disconnect work), the check meters as the public client.
"""

from __future__ import annotations

from datetime import date

from meters.choices import MeterStatus
from meters.demo import CUMULATIVE_EVERY, DEMO_METERS, SIM_FIRST_SERIAL, simulator_port
from meters.models import Meter, MeterEndpoint

from .models import ReadJob
from .scheduling import sync_schedule
from .simulators.dlms_fleet import default_auth_key, default_block_key, default_system_title
from .simulators.incidents import demo_check_meters

DEMO_ITEMS = ["clock", "registers", "profile", "events"]


def add_check_meters(demo) -> list[Meter]:
    """The simulated fleet's check meters, one per transformer and feeder (energy balance):
    registered at the addresses after the customer meters, as `demo_fleet` serves them."""
    made = []
    layout = demo_check_meters(DEMO_METERS, SIM_FIRST_SERIAL)
    firsts = {str(SIM_FIRST_SERIAL + first) for _serial, _level, first in layout}
    below = {
        m.serial: m for m in Meter.objects.filter(serial__in=firsts).select_related(
            "service_point__parent__parent"
        )
    }  # fmt: skip
    for i, (serial, level, first) in enumerate(layout):
        address = DEMO_METERS + i + 1
        transformer = below[str(SIM_FIRST_SERIAL + first)].service_point.parent
        node = transformer if level == "transformer" else transformer.parent
        model = demo.meter_models[1] if address % CUMULATIVE_EVERY == 0 else demo.meter_models[0]
        made.append(
            Meter.objects.create(
                serial=serial, meter_model=model, phases=3, firmware="sim-1.0",
                status=MeterStatus.ACTIVE, check_node=node, organisation=node.organisation,
                install_date=date(2025, 1, 1), host="127.0.0.1", port=simulator_port(),
                dlms_server_address=address, timeout_s=10, dlms_client_address=16,
                latitude=node.latitude, longitude=node.longitude,
            )
        )  # fmt: skip
    return made


def load_demo_collection(demo) -> None:
    """Read each region every 15 minutes; give every demo meter its push identity."""
    add_check_meters(demo)
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
