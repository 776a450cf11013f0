"""Bulk commands from the meter list: the ticked meters or everything a filter (a grid
subtree) matches, a confirmation with the count, a second person's approval on the bulk
command's page, cancel."""

from __future__ import annotations

import pytest
from django.test import Client

from collection.models import CommandState, MeterCommand
from loadcontrol.models import BulkCommand, BulkState

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def threshold(settings):
    settings.AMI_COMMAND_APPROVAL_THRESHOLD = 1


def test_a_subtree_from_the_meter_list_is_confirmed_then_approved_by_another(world, threshold):
    operator = browser(world.operator_a)
    listing = operator.get("/meters/").content.decode()
    assert 'id="bulk-supply"' in listing and 'id="all-filtered"' in listing
    filters = f"node={world.grid_a.transformer.pk}"
    asked = operator.post(
        "/meters/",
        {"action": "bulk_command", "kind": "disconnect", "reason": "feeder works",
         "all_filtered": "1", "filters": filters},
    )  # fmt: skip
    page = asked.content.decode()
    assert asked.status_code == 200 and 'data-count="2"' in page
    assert 'id="bulk-approval"' in page  # above the threshold: says it will wait
    assert not BulkCommand.objects.exists()  # nothing until confirmed
    confirm = {"kind": "disconnect", "reason": "feeder works", "all_filtered": "1",
               "filters": filters}  # fmt: skip
    stale = operator.post("/commands/bulk/new/", {**confirm, "count": "3"})
    assert stale.status_code == 200 and 'id="bulk-note"' in stale.content.decode()
    assert not BulkCommand.objects.exists()
    done = operator.post("/commands/bulk/new/", {**confirm, "count": "2"})
    bulk = BulkCommand.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/commands/bulk/{bulk.pk}/"
    assert bulk.state == BulkState.PENDING and bulk.target["by"] == "filter"
    own = operator.get(done["Location"]).content.decode()
    assert 'id="bulk-approve"' not in own and 'id="bulk-cancel"' in own  # not the requester
    assert f'data-ws="/ws/bulk-commands/{bulk.pk}/"' in own
    admin = browser(world.admin_a)
    assert 'id="bulk-approve"' in admin.get(done["Location"]).content.decode()
    assert browser(world.operator_b).get(done["Location"]).status_code == 404
    refused = operator.post(f"/commands/bulk/{bulk.pk}/decide/", {"decision": "approve"})
    assert refused.status_code == 403
    admin.post(f"/commands/bulk/{bulk.pk}/decide/", {"decision": "approve"})
    bulk.refresh_from_db()
    assert bulk.state == BulkState.APPROVED and bulk.decided_by == world.admin_a
    assert MeterCommand.objects.filter(origin=f"bulk:{bulk.pk}").count() == 2
    listed = operator.get(f"/commands/?bulk={bulk.pk}").content.decode()
    assert all(m.serial in listed for m in world.grid_a.meters)
    operator.post(f"/commands/bulk/{bulk.pk}/decide/", {"decision": "cancel", "reason": "later"})
    assert set(MeterCommand.objects.values_list("state", flat=True)) == {CommandState.CANCELLED}
    assert "bulk-commands" in operator.get("/commands/bulk/").content.decode()


def test_ticked_meters_and_who_may_not(world):
    meter = world.grid_a.meters[0]
    analyst = browser(world.readonly_a)
    assert 'id="bulk-supply"' not in analyst.get("/meters/").content.decode()
    post = {"action": "bulk_command", "kind": "disconnect", "reason": "x", "meter": [meter.pk],
            "filters": ""}  # fmt: skip
    assert analyst.post("/meters/", post).status_code == 403
    assert analyst.post("/commands/bulk/new/", {**post, "count": "1"}).status_code == 403
    operator = browser(world.operator_a)
    nothing = operator.post("/meters/", {**post, "meter": []}, follow=True)
    assert "Nothing sent" in nothing.content.decode()
    foreign = operator.post("/meters/", {**post, "meter": [world.grid_b.meters[0].pk]}, follow=True)
    assert "no such meter" in foreign.content.decode()
    no_reason = operator.post(
        "/commands/bulk/new/", {**post, "reason": "", "count": "1"}, follow=True
    )
    assert "say why" in no_reason.content.decode()
    assert not BulkCommand.objects.exists()
    ok = operator.post("/commands/bulk/new/", {**post, "count": "1"})
    assert ok.status_code == 302
    assert BulkCommand.objects.get().state == BulkState.APPROVED  # below the threshold
