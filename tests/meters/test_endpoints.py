"""One endpoint row per meter and concentrator: created with it, read and written through it,
and the only thing the read targets take a meter's settings from."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from collection.protocols.dlms.settings import DlmsSettings
from collection.targets import TARGET_RELATED, NotReadable, build_target, endpoint_of
from meters.models import ConcentratorEndpoint, DataConcentrator, Meter, MeterEndpoint

pytestmark = pytest.mark.django_db


def _new_meter(world, serial, **comm):
    model = world.grid_a.meters[0].meter_model
    return Meter.objects.create(serial=serial, meter_model=model, organisation=world.org_a, **comm)


def test_every_meter_and_concentrator_gets_its_endpoint(world):
    bare = _new_meter(world, "E-BARE")
    assert MeterEndpoint.objects.get(meter=bare).protocol == "dlms"
    model = bare.meter_model
    made = Meter.objects.bulk_create(
        [
            Meter(serial="E-BULK1", meter_model=model, organisation=world.org_a, host="h", port=1),
            Meter(serial="E-BULK2", meter_model=model, organisation=world.org_a),
        ]
    )
    assert MeterEndpoint.objects.get(meter=made[0]).host == "h"
    assert MeterEndpoint.objects.filter(meter__in=made).count() == 2
    dc = DataConcentrator.objects.create(serial="E-DC", organisation=world.org_a, host="c", port=2)
    assert ConcentratorEndpoint.objects.get(concentrator=dc).port == 2


def test_fields_and_options_are_the_endpoints(world):
    meter = _new_meter(world, "E-OPT", host="10.0.0.2", port=4059, dlms_server_address=9)
    endpoint = MeterEndpoint.objects.get(meter=meter)
    assert endpoint.options == {"dlms_server_address": 9}
    assert meter.dlms_client_address == 16  # the default, as the column had
    meter.security, meter.password, meter.modbus_unit_id = "low", "pw", 5
    meter.save()
    endpoint.refresh_from_db()
    assert (endpoint.security, endpoint.password) == ("low", "pw")
    assert endpoint.options == {"dlms_server_address": 9, "modbus_unit_id": 5}
    assert list(Meter.objects.filter(endpoint__protocol="dlms", serial="E-OPT")) == [meter]


def test_targets_read_the_endpoint_only(world):
    meter = _new_meter(world, "E-TGT", host="10.0.0.3", port=4059, dlms_server_address=4)
    target = build_target(Meter.objects.select_related(*TARGET_RELATED).get(pk=meter.pk))
    assert isinstance(target.settings, DlmsSettings)
    assert (target.settings.url, target.settings.server_address) == ("tcp://10.0.0.3:4059", 4)
    assert target.settings.invocation_counter_key == f"meter:{meter.pk}:16"
    assert endpoint_of(meter).options["server_address"] == 4  # under the driver's name


def test_incomplete_endpoint_is_not_readable_and_says_why(world):
    meter = _new_meter(world, "E-MOD", host="10.0.0.4", port=502, protocol="modbus")
    with pytest.raises(NotReadable, match="needs a unit id"):
        build_target(Meter.objects.select_related(*TARGET_RELATED).get(pk=meter.pk))
    meter.modbus_unit_id = 3
    meter.save()
    target = build_target(Meter.objects.select_related(*TARGET_RELATED).get(pk=meter.pk))
    assert target.settings.unit_id == 3


def test_through_a_concentrator_the_line_is_the_concentrators(world):
    dc = DataConcentrator.objects.create(serial="E-DC2", organisation=world.org_a, host="c", port=7)
    meter = _new_meter(world, "E-THRU", transport="concentrator", concentrator=dc)
    target = build_target(Meter.objects.select_related(*TARGET_RELATED).get(pk=meter.pk))
    assert target.settings.url == "tcp://c:7" and target.line == f"concentrator:{dc.pk}"


def test_api_writes_the_endpoint(world):
    client = APIClient()
    client.force_authenticate(world.engineer_a)
    meter = world.grid_a.meters[0]
    response = client.patch(
        f"/api/meters/{meter.pk}/",
        {"dlms_interface": "hdlc", "dlms_physical_address": 33, "timeout_s": 5},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["dlms_interface"], body["dlms_physical_address"], body["timeout_s"]) == (
        "hdlc",
        33,
        5,
    )
    endpoint = MeterEndpoint.objects.get(meter=meter)
    assert endpoint.options["dlms_interface"] == "hdlc" and endpoint.timeout_s == 5
    bad = client.patch(f"/api/meters/{meter.pk}/", {"modbus_unit_id": 300}, format="json")
    assert bad.status_code == 400 and "modbus_unit_id" in bad.json()
    listed = client.get("/api/meters/", {"protocol": "modbus"}).json()
    assert listed["count"] == 0 if isinstance(listed, dict) else listed == []
