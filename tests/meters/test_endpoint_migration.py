"""meters/0013_endpoints: every meter's and concentrator's settings move to its endpoint row,
secrets still encrypted, and back again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import make_meter_model

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE = [("meters", "0012_comm_status_relay_state")]
AFTER = [("meters", "0013_endpoints")]


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_settings_move_to_endpoints_and_back(world):
    model = make_meter_model(world.org_a, name="MIGRATED")
    org_id, model_id = world.org_a.pk, model.pk
    try:
        old = _migrate(BEFORE)
        OldMeter = old.get_model("meters", "Meter")
        OldConcentrator = old.get_model("meters", "DataConcentrator")
        dc = OldConcentrator.objects.create(
            serial="DC-MIG", organisation_id=org_id, host="10.0.0.9", port=4059, retries=4
        )
        OldMeter.objects.create(
            serial="MIG-1", meter_model_id=model_id, organisation_id=org_id,
            transport="concentrator", concentrator=dc, dlms_interface="hdlc",
            dlms_client_address=17, dlms_server_address=5, dlms_physical_address=33,
            modbus_unit_id=7, security="low", password="pw-1", timeout_s=9,
            auth_key="00" * 16, system_title="4d4d4d0000bc614e",
        )  # fmt: skip
        OldMeter.objects.create(
            serial="MIG-2", meter_model_id=model_id, organisation_id=org_id,
            host="10.0.0.1", port=4061, iec21_address="12345",
        )  # fmt: skip
        # The models as they were right after 0013 (today's have columns of later migrations).
        after = _migrate(AFTER)
        m1 = (
            after.get_model("meters", "Meter")
            .objects.select_related("endpoint")
            .get(serial="MIG-1")
        )
        endpoint = m1.endpoint
        assert (endpoint.transport, endpoint.security, endpoint.password, endpoint.timeout_s) == (
            "concentrator",
            "low",
            "pw-1",
            9,
        )
        assert endpoint.options == {
            "dlms_interface": "hdlc", "dlms_client_address": 17, "dlms_server_address": 5,
            "dlms_physical_address": 33, "modbus_unit_id": 7,
        }  # fmt: skip
        assert (endpoint.auth_key, endpoint.system_title) == ("00" * 16, "4d4d4d0000bc614e")
        dc_endpoint = m1.concentrator.endpoint
        assert (dc_endpoint.host, dc_endpoint.retries) == ("10.0.0.9", 4)
        with connection.cursor() as cursor:  # still encrypted at rest
            cursor.execute("SELECT password FROM meters_meterendpoint WHERE meter_id = %s", [m1.pk])
            assert "pw-1" not in cursor.fetchone()[0]
        m2 = (
            after.get_model("meters", "Meter")
            .objects.select_related("endpoint")
            .get(serial="MIG-2")
        )
        assert (m2.endpoint.host, m2.endpoint.port) == ("10.0.0.1", 4061)
        assert m2.endpoint.options["iec21_address"] == "12345"
        assert m2.endpoint.options["dlms_client_address"] == 16
        old = _migrate(BEFORE)
        back = old.get_model("meters", "Meter").objects.get(serial="MIG-1")
        assert (back.dlms_interface, back.dlms_server_address, back.modbus_unit_id) == (
            "hdlc",
            5,
            7,
        )
        assert (back.password, back.transport, back.iec21_address) == ("pw-1", "concentrator", "")
        assert (
            old.get_model("meters", "DataConcentrator").objects.get(serial="DC-MIG").host
            == "10.0.0.9"
        )
    finally:
        _migrate(_latest())


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
