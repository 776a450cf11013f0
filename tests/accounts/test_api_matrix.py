"""Every registry and accounts API endpoint, tried by every fixture user (tests/api_matrix.py)."""

from decimal import Decimal

import pytest

from accounts.models import Organisation, User
from collection.models import JobRun, ReadJob
from meters.choices import NodeKind
from meters.models import Channel, Customer, DataConcentrator, GridNode, Meter, MeterModel
from tests.api_matrix import ApiSpec, generate_tests

SPECS = [
    ApiSpec(
        basename="gridnode",
        url="/api/grid-nodes/",
        model=GridNode,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.feeder,
        create_payload=lambda w: {
            "kind": NodeKind.TRANSFORMER,
            "code": "NEW-T9",
            "name": "New transformer",
            "parent": w.grid_a.feeder.pk,
            "rated_kva": "315.00",
        },
        update_payload=lambda w: {"name": "Renamed"},
    ),
    ApiSpec(
        basename="metermodel",
        url="/api/meter-models/",
        model=MeterModel,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: MeterModel.objects.create(
            manufacturer="North", name="Local", organisation=w.org_a
        ),
        create_payload=lambda w: {
            "manufacturer": "Landis",
            "name": "E650",
            "protocol": "dlms",
            "organisation": w.org_a.pk,
        },
        update_payload=lambda w: {"description": "changed"},
        # The utility's shared model is visible below it.
        extra_visible_to_a=lambda w: MeterModel.objects.filter(organisation=w.utility).count(),
    ),
    ApiSpec(
        basename="channel",
        url="/api/channels/",
        model=Channel,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: Channel.objects.create(
            meter_model=MeterModel.objects.create(
                manufacturer="North", name="Own", organisation=w.org_a
            ),
            obis="1.0.1.8.0.255",
            name="+A",
            unit="Wh",
            kind="register",
        ),
        create_payload=lambda w: {
            "meter_model": MeterModel.objects.get_or_create(
                manufacturer="North", name="Own2", organisation=w.org_a
            )[0].pk,
            "obis": "1.8.0",
            "name": "+A",
            "unit": "Wh",
            "scaler": 0,
            "kind": "register",
        },
        update_payload=lambda w: {"unit": "kWh", "scaler": 3},
    ),
    ApiSpec(
        basename="dataconcentrator",
        url="/api/concentrators/",
        model=DataConcentrator,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.concentrator,
        create_payload=lambda w: {
            "serial": "DC-NEW",
            "organisation": w.org_a.pk,
            "grid_node": w.grid_a.transformer.pk,
            "protocol": "dlms",
            "transport": "tcp",
            "host": "10.0.0.5",
            "port": 4059,
            "security": "low",
            "password": "dc-secret-1",
        },
        update_payload=lambda w: {"name": "renamed", "password": "new-dc-secret"},
        delete_object=lambda w: DataConcentrator.objects.create(
            serial="DC-SPARE", organisation=w.org_a, host="h", port=1
        ),
        secret_fields=("password", "auth_key", "block_key"),
    ),
    ApiSpec(
        basename="meter",
        url="/api/meters/",
        model=Meter,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.meters[0],
        create_payload=lambda w: {
            "serial": "NEW000001",
            "meter_model": w.meter_model.pk,
            "service_point": w.grid_a.service_points[0].pk,
            "status": "installed",
            "protocol": "dlms",
            "transport": "tcp",
            "host": "10.1.1.1",
            "port": 4059,
            "security": "high",
            "auth_key": "00" * 16,
            "block_key": "11" * 16,
            "system_title": "4142434445464748",
            "ct_ratio": "1.000",
        },
        update_payload=lambda w: {"firmware": "2.1", "password": "changed-pw", "security": "low"},
        secret_fields=("password", "auth_key", "block_key"),
    ),
    ApiSpec(
        basename="customer",
        url="/api/customers/",
        model=Customer,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.customers[1],
        create_payload=lambda w: {
            "account_number": "NEW-ACC",
            "name": "New Customer",
            "service_point": w.grid_a.service_points[1].pk,
            "email": "new@example.invalid",
        },
        update_payload=lambda w: {"phone": "+44 1234"},
    ),
    ApiSpec(
        basename="organisation",
        url="/api/organisations/",
        model=Organisation,
        writer="admin_a",
        other_writer="admin_b",
        object_a=lambda w: w.org_a,
        create_payload=lambda w: {
            "name": "North district 1",
            "code": "north-d1",
            "parent": w.org_a.pk,
        },
        update_payload=lambda w: {"name": "North (renamed)"},
        delete_object=lambda w: Organisation.objects.create(
            name="North spare", code="north-spare", parent=w.org_a
        ),
    ),
    ApiSpec(
        basename="user",
        url="/api/users/",
        model=User,
        writer="admin_a",
        other_writer="admin_b",
        object_a=lambda w: w.operator_a,
        create_payload=lambda w: {
            "username": "new-north-user",
            "organisation": w.org_a.pk,
            "roles": ["operator"],
            "password": "a-Strong-passw0rd!",
            "email": "nn@example.invalid",
        },
        update_payload=lambda w: {"first_name": "Changed", "password": "another-Strong-pw9"},
        secret_fields=("password",),
    ),
    ApiSpec(
        basename="readjob",
        url="/api/read-jobs/",
        model=ReadJob,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: ReadJob.objects.create(name="North daily", organisation=w.org_a),
        create_payload=lambda w: {
            "name": "Feeder 1 nightly",
            "organisation": w.org_a.pk,
            "grid_node": w.grid_a.feeder.pk,
            "items": ["clock", "registers", "profile"],
            "crontab": "30 2 * * *",
        },
        update_payload=lambda w: {"crontab": "0 3 * * 1-5", "enabled": False},
    ),
]

for _spec in SPECS:
    globals().update(generate_tests(_spec))


def test_every_api_model_has_generated_tests():
    """Meta-test: a viewset whose model has no ApiSpec here fails the suite."""
    from django.urls import get_resolver

    covered = {spec.model for spec in SPECS} | EXEMPT_MODELS
    missing = set()
    for pattern in _viewset_patterns(get_resolver()):
        model = getattr(pattern.callback.cls, "queryset", None)
        model = model.model if model is not None else None
        if model is not None and model not in covered:
            missing.add(model._meta.label)
    assert not missing, f"API models without generated permission tests: {sorted(missing)}"


# Read-only endpoints tested on their own (tests/accounts/test_activity_log.py).
EXEMPT_MODELS: set = {JobRun}  # read-only: tests/collection/test_collection_api.py


def _viewset_patterns(resolver):
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _viewset_patterns(pattern)
        elif getattr(getattr(pattern, "callback", None), "cls", None) is not None:
            yield pattern


@pytest.mark.django_db
def test_decimal_payload_is_stored_exactly(world):
    from tests.api_matrix import client_for

    response = client_for(world.engineer_a).patch(
        f"/api/meters/{world.grid_a.meters[0].pk}/", {"ct_ratio": "40.125"}, format="json"
    )
    assert response.status_code == 200
    assert Meter.objects.get(pk=world.grid_a.meters[0].pk).ct_ratio == Decimal("40.125")
