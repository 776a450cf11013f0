"""Builders for test data: organisations, users with roles, a small grid per organisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import Group

from accounts import roles
from accounts.models import Organisation, User
from meters.choices import ChannelKind, MeterStatus, NodeKind
from meters.models import Channel, Customer, DataConcentrator, GridNode, Meter, MeterModel


def make_user(username: str, organisation, *role_names: str, **extra) -> User:
    user = User.objects.create_user(
        username, password="pw-" + username, organisation=organisation, **extra
    )
    user.groups.set(Group.objects.filter(name__in=role_names))
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


def make_meter_model(organisation, manufacturer="Acme", name="AM550") -> MeterModel:
    model = MeterModel.objects.create(
        manufacturer=manufacturer, name=name, organisation=organisation
    )
    specs = [
        ("1-0:1.8.0*255", "Active energy import", "Wh", ChannelKind.REGISTER, ""),
        ("1-0:2.8.0*255", "Active energy export", "Wh", ChannelKind.REGISTER, ""),
        ("1-0:1.29.0*255", "Import per interval", "Wh", ChannelKind.PROFILE, "1-0:99.1.0*255"),
        ("1-0:2.29.0*255", "Export per interval", "Wh", ChannelKind.PROFILE, "1-0:99.1.0*255"),
        ("0-0:99.98.0*255", "Standard event log", "", ChannelKind.EVENT_LOG, "0-0:99.98.0*255"),
    ]
    for code, label, unit, kind, profile in specs:
        Channel.objects.create(
            meter_model=model, obis=code, name=label, unit=unit, kind=kind, profile_obis=profile
        )
    return model


@dataclass
class Grid:
    """One organisation's grid: region > substation > feeder > transformer > 2 service points."""

    organisation: Organisation
    region: GridNode
    substation: GridNode
    feeder: GridNode
    transformer: GridNode
    service_points: list[GridNode]
    concentrator: DataConcentrator
    meters: list[Meter] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)


def make_grid(
    organisation: Organisation, prefix: str, meter_model: MeterModel, meters: int = 2
) -> Grid:
    def node(kind, code, name, parent=None, **extra):
        return GridNode.objects.create(
            kind=kind,
            code=f"{prefix}-{code}",
            name=name,
            parent=parent,
            organisation=organisation,
            **extra,
        )

    region = node(NodeKind.REGION, "R", f"{prefix} region")
    substation = node(NodeKind.SUBSTATION, "S1", "Substation 1", region, voltage_kv=33)
    feeder = node(NodeKind.FEEDER, "F1", "Feeder 1", substation, voltage_kv=11)
    transformer = node(
        NodeKind.TRANSFORMER,
        "T1",
        "Transformer 1",
        feeder,
        rated_kva=200,
        latitude="51.5",
        longitude="-0.12",
    )
    points = [
        node(
            NodeKind.SERVICE_POINT,
            f"SP{i}",
            f"Service point {i}",
            transformer,
            address=f"{i} {prefix} Street",
        )
        for i in range(1, meters + 1)
    ]
    concentrator = DataConcentrator.objects.create(
        serial=f"{prefix}-DC1",
        organisation=organisation,
        grid_node=transformer,
        host="127.0.0.1",
        port=4059,
    )
    grid = Grid(organisation, region, substation, feeder, transformer, points, concentrator)
    for i, point in enumerate(points, start=1):
        grid.meters.append(
            Meter.objects.create(
                serial=f"{prefix}{i:06d}",
                meter_model=meter_model,
                service_point=point,
                organisation=organisation,
                status=MeterStatus.ACTIVE,
                host="127.0.0.1",
                port=4059,
                install_date=date(2025, 1, i),
                password="secret-pw-1",
            )
        )
        grid.customers.append(
            Customer.objects.create(
                account_number=f"{prefix}-ACC-{i}",
                name=f"Customer {prefix} {i}",
                service_point=point,
                email=f"c{i}@{prefix.lower()}.example",
            )
        )
    return grid


@dataclass
class World:
    """Two organisations under one utility, their grids, and the users of STYLE.md."""

    utility: Organisation
    org_a: Organisation
    org_b: Organisation
    grid_a: Grid
    grid_b: Grid
    meter_model: MeterModel
    admin_a: User
    engineer_a: User
    operator_a: User
    readonly_a: User
    operator_b: User
    engineer_b: User
    admin_b: User
    customer: User
    superuser: User


def make_world() -> World:
    utility = Organisation.objects.create(name="Utility", code="utility")
    org_a = Organisation.objects.create(name="North", code="north", parent=utility)
    org_b = Organisation.objects.create(name="South", code="south", parent=utility)
    model = make_meter_model(utility)
    grid_a = make_grid(org_a, "NA", model)
    grid_b = make_grid(org_b, "SB", model)
    customer = make_user("customer-a", None, roles.CUSTOMER)
    grid_a.customers[0].portal_user = customer
    grid_a.customers[0].save()
    return World(
        utility=utility,
        org_a=org_a,
        org_b=org_b,
        grid_a=grid_a,
        grid_b=grid_b,
        meter_model=model,
        admin_a=make_user("admin-a", org_a, roles.ADMINISTRATOR, is_staff=True),
        engineer_a=make_user("engineer-a", org_a, roles.ENGINEER, is_staff=True),
        operator_a=make_user("operator-a", org_a, roles.OPERATOR),
        readonly_a=make_user("analyst-a", org_a, roles.ANALYST, is_staff=True),
        operator_b=make_user("operator-b", org_b, roles.OPERATOR),
        engineer_b=make_user("engineer-b", org_b, roles.ENGINEER, is_staff=True),
        admin_b=make_user("admin-b", org_b, roles.ADMINISTRATOR, is_staff=True),
        customer=customer,
        superuser=User.objects.create_superuser("root", "root@example.invalid", "pw-root"),
    )
