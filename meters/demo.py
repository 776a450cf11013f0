"""The demo `make run` loads into an empty database: two regions with grids, meters, users.

The other apps add their part of the demo utility (read jobs and push keys, vending): the
functions named in settings' `AMI_DEMO_PARTS`, each called with the `DemoUtility` built here
(meters depends on none of those apps). Organisations are created through
`accounts.actions.create_organisation`, so the demo gets the default alarm rules every new
organisation gets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.module_loading import import_string

from accounts import roles
from accounts.actions import create_organisation
from accounts.models import Organisation, User

from .choices import ChannelKind, MeterStatus, NodeKind, Protocol, Transport
from .models import (
    Channel,
    ConcentratorReadMode,
    Customer,
    DataConcentrator,
    GridNode,
    Meter,
    MeterModel,
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    what: str
    organisation: str | None
    role: str | None
    staff: bool = False


DEMO_LOGINS = (
    DemoLogin("admin", "demo-admin-pass", "superuser of the whole demo utility", None, None),
    DemoLogin(
        "north-admin",
        "demo-north-admin",
        "administrator, North region (admin pages)",
        "north",
        roles.ADMINISTRATOR,
        staff=True,
    ),
    DemoLogin(
        "north-engineer",
        "demo-north-eng",
        "engineer, North region (configures meters)",
        "north",
        roles.ENGINEER,
        staff=True,
    ),
    DemoLogin(
        "north-operator", "demo-north-pass", "operator, North region", "north", roles.OPERATOR
    ),
    DemoLogin(
        "north-analyst",
        "demo-analyst-pass",
        "read-only analyst, North region",
        "north",
        roles.ANALYST,
    ),
    DemoLogin(
        "south-operator", "demo-south-pass", "operator, South region", "south", roles.OPERATOR
    ),
    DemoLogin(
        "north-clerk",
        "demo-north-clerk",
        "vending clerk, North office: shift open, sell to meter 01900000017",
        "north",
        roles.VENDING_CLERK,
    ),
    DemoLogin(
        "south-clerk",
        "demo-south-clerk",
        "vending clerk, South office: shift open, sell to meter 01900000256",
        "south",
        roles.VENDING_CLERK,
    ),
    # Customers belong to no organisation: the portal finds them by their customer record,
    # which the vending demo links (the first prepaid account of their region).
    DemoLogin(
        "north-customer",
        "demo-north-customer",
        "customer, North: the portal (usage, prepaid meter 01900000017)",
        "north",
        roles.CUSTOMER,
    ),
    DemoLogin(
        "south-customer",
        "demo-south-customer",
        "customer, South: the portal (usage, prepaid meter 01900000256)",
        "south",
        roles.CUSTOMER,
    ),
)

# The demo fleet: per region 2 substations x 2 feeders x 2 transformers x 3 service points.
SUBSTATIONS, FEEDERS, TRANSFORMERS, POINTS = 2, 2, 2, 3
REGIONS = (
    ("north", "North Region", "N", Decimal("52.2000"), Decimal("0.1200")),
    ("south", "South Region", "S", Decimal("51.4500"), Decimal("-0.9700")),
)

PROFILE = "1-0:99.1.0*255"
EVENT_LOG = "0-0:99.98.0*255"
DEMO_CHANNELS = (
    ("1-0:1.8.0*255", "Active energy import (+A)", "Wh", ChannelKind.REGISTER, ""),
    ("1-0:2.8.0*255", "Active energy export (-A)", "Wh", ChannelKind.REGISTER, ""),
    ("1-0:3.8.0*255", "Reactive energy import (+R)", "varh", ChannelKind.REGISTER, ""),
    ("1-0:4.8.0*255", "Reactive energy export (-R)", "varh", ChannelKind.REGISTER, ""),
    ("1-0:1.8.1*255", "Active energy import, tariff 1", "Wh", ChannelKind.REGISTER, ""),
    ("1-0:1.8.2*255", "Active energy import, tariff 2", "Wh", ChannelKind.REGISTER, ""),
    ("1-0:1.6.0*255", "Maximum demand import", "W", ChannelKind.REGISTER, ""),
    ("1-0:1.29.0*255", "+A per interval", "Wh", ChannelKind.PROFILE, PROFILE),
    ("1-0:2.29.0*255", "-A per interval", "Wh", ChannelKind.PROFILE, PROFILE),
    ("1-0:3.29.0*255", "+R per interval", "varh", ChannelKind.PROFILE, PROFILE),
    ("1-0:4.29.0*255", "-R per interval", "varh", ChannelKind.PROFILE, PROFILE),
    ("0-0:99.98.0*255", "Standard event log", "", ChannelKind.EVENT_LOG, EVENT_LOG),
    ("1-0:32.7.0*255", "Voltage L1", "V", ChannelKind.INSTANTANEOUS, ""),
    ("1-0:31.7.0*255", "Current L1", "A", ChannelKind.INSTANTANEOUS, ""),
)
# The IDIS-style model: its load profile captures the energy registers themselves
# (cumulative values), not the energy per interval.
DEMO_CUMULATIVE_CHANNELS = tuple(c for c in DEMO_CHANNELS if c[3] != ChannelKind.PROFILE) + (
    ("1-0:1.8.0*255", "+A register in the profile", "Wh", ChannelKind.PROFILE, PROFILE),
    ("1-0:2.8.0*255", "-A register in the profile", "Wh", ChannelKind.PROFILE, PROFILE),
)
# Every CUMULATIVE_EVERY-th demo meter has the cumulative profile; the Procfile starts the
# simulator with the same `--cumulative-every` (tests/meters/test_demo.py checks they agree).
CUMULATIVE_EVERY = 4


# The simulated DLMS meters' TEST password (collection/simulators/dlms/meter.py): the demo's
# customer meters associate as the low-security client 17, which may switch the relay.
SIM_PASSWORD = "12345678"
SIM_FIRST_SERIAL = 90000001
DEMO_METERS = len(REGIONS) * SUBSTATIONS * FEEDERS * TRANSFORMERS * POINTS  # the DLMS fleet

# Besides the DLMS fleet: commercial meters on shared lines, each line a simulator process of
# the Procfile -- North has four Modbus RTU meters (SDM630, unit ids 1-4) on one TCP-serial
# converter, South four IEC 62056-21 meters (addressed by serial) on another. Their serials
# are the Procfile's `--first-serial`, after the DLMS fleet's (the demo's other parts take a
# region's first meters by serial: the DLMS ones).
LINE_METERS = 4
MODBUS_FIRST_SERIAL = 97000001
IEC21_FIRST_SERIAL = 98000001
ENERGY_REGISTERS = DEMO_CHANNELS[:4]  # +A, -A, +R, -R
LINE_PROTOCOL = {"north": Protocol.MODBUS, "south": Protocol.IEC62056_21}
# The first concentrator of each region (feeder 1 of substation 1) reads its transformer's
# meters: they are registered "through the concentrator", at their logical device.
CONCENTRATOR_READ = (1, 1)  # (substation, feeder)
# Those two concentrators' own logical devices in the simulated fleet (the Procfile's
# `simulate_meters --concentrator`): the north one is read for its own collected data, the
# south one as a gateway to each meter.
CONCENTRATOR_WPORT = {"N": 1001, "S": 1002}
OWN_DATA_REGIONS = ("N",)


@dataclass
class DemoUtility:
    """What the demo made, for the other apps' parts (settings.AMI_DEMO_PARTS)."""

    utility: Organisation
    regions: dict[str, Organisation]  # by code: "north", "south"
    meter_models: tuple[MeterModel, ...]
    users: dict[str, User] = field(default_factory=dict)  # by user name


def demo_loaded() -> bool:
    """Any organisation means the database is in use."""
    return Organisation.objects.exists()


def simulator_port() -> int:
    return int(os.environ.get("AMI_SIM_PORT", "4059"))


def modbus_port() -> int:
    """The Modbus line's converter (amisite/launcher.py chooses it)."""
    return int(os.environ.get("AMI_SIM_MODBUS_PORT", "5020"))


def iec21_port() -> int:
    """The IEC 62056-21 line's converter (amisite/launcher.py chooses it)."""
    return int(os.environ.get("AMI_SIM_IEC21_PORT", "4061"))


@transaction.atomic
def load_demo() -> DemoUtility:
    """Create the demo utility; the caller checks that the database is empty first."""
    utility = create_organisation(Organisation(name="Demo Power & Light", code="demo-utility"))
    model = MeterModel.objects.create(
        manufacturer="Simulated",
        name="DLMS-3P",
        organisation=utility,
        description="The simulated DLMS/COSEM meter of collection/simulators",
    )
    idis = MeterModel.objects.create(
        manufacturer="Simulated",
        name="DLMS-3P-IDIS",
        organisation=utility,
        description="The simulated meter with an IDIS-style profile of cumulative registers",
    )
    for meter_model, channels in ((model, DEMO_CHANNELS), (idis, DEMO_CUMULATIVE_CHANNELS)):
        for code, label, unit, kind, profile in channels:
            Channel.objects.create(
                meter_model=meter_model,
                obis=code,
                name=label,
                unit=unit,
                kind=kind,
                profile_obis=profile,
            )
    line_models = {
        Protocol.MODBUS: _line_model(utility, Protocol.MODBUS, "Eastron", "SDM630"),
        Protocol.IEC62056_21: _line_model(utility, Protocol.IEC62056_21, "Simulated", "SIM21"),
    }
    demo = DemoUtility(utility, {}, (model, idis, *line_models.values()))
    meter_index = 0
    for code, name, letter, lat, lon in REGIONS:
        org = create_organisation(Organisation(name=name, code=code, parent=utility))
        demo.regions[code] = org
        meter_index = _demo_grid(org, letter, lat, lon, (model, idis), meter_index)
        protocol = LINE_PROTOCOL[code]
        _line_meters(org, letter, protocol, line_models[protocol])
    demo.users["admin"] = User.objects.create_superuser(
        "admin", "admin@example.invalid", "demo-admin-pass", organisation=utility
    )
    for login in DEMO_LOGINS[1:]:
        user = User.objects.create_user(
            login.username,
            password=login.password,
            organisation=None if login.role == roles.CUSTOMER else demo.regions[login.organisation],
            is_staff=login.staff,
        )
        user.groups.set(Group.objects.filter(name=login.role))
        demo.users[login.username] = user
    for part in settings.AMI_DEMO_PARTS:
        import_string(part)(demo)
    return demo


def _demo_grid(org, letter, lat, lon, models, meter_index) -> int:
    def node(kind, code, name, parent, **extra):
        return GridNode.objects.create(
            kind=kind, code=code, name=name, parent=parent, organisation=org, **extra
        )

    region = node(NodeKind.REGION, f"{letter}", org.name, None, latitude=lat, longitude=lon)
    for s in range(1, SUBSTATIONS + 1):
        sub = node(
            NodeKind.SUBSTATION,
            f"{letter}S{s}",
            f"Substation {letter}{s}",
            region,
            voltage_kv=Decimal("33"),
            latitude=lat + s * Decimal("0.02"),
            longitude=lon,
        )
        for f in range(1, FEEDERS + 1):
            feeder = node(
                NodeKind.FEEDER, f"{letter}S{s}F{f}", f"Feeder {f}", sub, voltage_kv=Decimal("11")
            )
            for t in range(1, TRANSFORMERS + 1):
                t_lat = lat + s * Decimal("0.02") + f * Decimal("0.005")
                t_lon = lon + t * Decimal("0.008")
                tr = node(
                    NodeKind.TRANSFORMER,
                    f"{letter}S{s}F{f}T{t}",
                    f"Transformer {t}",
                    feeder,
                    rated_kva=Decimal("200"),
                    latitude=t_lat,
                    longitude=t_lon,
                )
                concentrator = None
                if t == 1:
                    reads = (s, f) == CONCENTRATOR_READ
                    concentrator = DataConcentrator.objects.create(
                        serial=f"DC-{letter}{s}{f}",
                        name=f"Concentrator {letter}{s}{f}",
                        organisation=org,
                        grid_node=tr,
                        host="127.0.0.1",
                        port=simulator_port(),
                        latitude=t_lat,
                        longitude=t_lon,
                        **(
                            {
                                "dlms_server_address": CONCENTRATOR_WPORT[letter],
                                "read_mode": ConcentratorReadMode.OWN_DATA
                                if letter in OWN_DATA_REGIONS
                                else ConcentratorReadMode.GATEWAY,
                            }
                            if reads and letter in CONCENTRATOR_WPORT
                            else {}
                        ),
                    )
                for p in range(1, POINTS + 1):
                    meter_index += 1
                    point = node(
                        NodeKind.SERVICE_POINT,
                        f"{tr.code}P{p}",
                        f"Supply {p}",
                        tr,
                        address=f"{p} {tr.code} Road",
                        latitude=t_lat + p * Decimal("0.0007"),
                        longitude=t_lon,
                    )
                    # The simulator's serials and logical addresses (one listener, device i+1).
                    serial = str(SIM_FIRST_SERIAL + meter_index - 1)
                    cumulative = meter_index % CUMULATIVE_EVERY == 0
                    behind = concentrator if (s, f) == CONCENTRATOR_READ else None
                    Meter.objects.create(
                        transport=Transport.CONCENTRATOR if behind else Transport.TCP,
                        concentrator=behind,
                        serial=serial,
                        meter_model=models[1] if cumulative else models[0],
                        phases=3,
                        firmware="sim-1.0",
                        status=MeterStatus.ACTIVE,
                        service_point=point,
                        organisation=org,
                        install_date=date(2025, 1, 1),
                        host="127.0.0.1",
                        port=simulator_port(),
                        dlms_server_address=meter_index,
                        timeout_s=10,
                        # The management client with the simulator's TEST password: the
                        # public client (16) may only read, so the relay buttons would fail.
                        security="low",
                        password=SIM_PASSWORD,
                        dlms_client_address=17,
                        latitude=point.latitude,
                        longitude=point.longitude,
                    )
                    Customer.objects.create(
                        account_number=f"ACC-{meter_index:06d}",
                        name=f"Demo customer {meter_index}",
                        email=f"customer{meter_index}@example.invalid",
                        service_point=point,
                        tariff_code="RES-1",
                    )
    return meter_index


def _line_model(utility, protocol, manufacturer, name) -> MeterModel:
    """A meter model of the shared lines' meters: its four energy registers."""
    meter_model = MeterModel.objects.create(
        manufacturer=manufacturer, name=name, protocol=protocol, organisation=utility
    )
    for code, label, unit, kind, _profile in ENERGY_REGISTERS:
        Channel.objects.create(meter_model=meter_model, obis=code, name=label, unit=unit, kind=kind)
    return meter_model


def _line_meters(org, letter, protocol, meter_model) -> None:
    """LINE_METERS commercial meters near transformer S1F2T2, on one shared line (a
    TCP-serial converter): they take turns, and a dead converter is one fault of the line.

    They stand at no service point: every feeder and transformer of the demo has a check
    meter whose simulated energy is that of the DLMS meters below it (energy balance), which
    meters of another value model below it would upset."""
    transformer = GridNode.objects.get(code=f"{letter}S1F2T2")
    for n in range(1, LINE_METERS + 1):
        if protocol == Protocol.MODBUS:
            line = {
                "serial": str(MODBUS_FIRST_SERIAL + n - 1),
                "transport": Transport.SERIAL,
                "serial_url": f"rtu+tcp://127.0.0.1:{modbus_port()}",
                "modbus_unit_id": n,
            }
        else:
            serial = str(IEC21_FIRST_SERIAL + n - 1)
            line = {
                "serial": serial,
                "host": "127.0.0.1",
                "port": iec21_port(),
                "iec21_address": serial,
            }
        Meter.objects.create(
            meter_model=meter_model,
            phases=3,
            firmware="sim-1.0",
            status=MeterStatus.ACTIVE,
            organisation=org,
            install_date=date(2025, 6, 1),
            protocol=protocol,
            timeout_s=5,
            latitude=transformer.latitude - n * Decimal("0.0007"),
            longitude=transformer.longitude,
            **line,
        )
