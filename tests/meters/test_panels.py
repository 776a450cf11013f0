"""Registry pages compose other apps' panels; without them they show the registry alone."""

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from collection.models import ReadJob
from meters import panels

pytestmark = pytest.mark.django_db

METERS_TEMPLATES = Path(settings.BASE_DIR) / "templates" / "meters"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_configured_panel_resolves_into_a_known_slot():
    known = {panels.METER_INSTRUMENTS, panels.METER_HISTORY, panels.METER_ACTIONS}
    known |= {panels.METER_LIST_BULK, panels.GRID_TREE_OVERLAY, panels.MAP_OVERLAY}
    assert set(settings.AMI_PANELS) <= known
    for slot in settings.AMI_PANELS:
        assert all(isinstance(p, panels.Panel) for p in panels.panels(slot))
    bulk = panels.bulk_action(panels.METER_LIST_BULK, "add_to_job")
    assert bulk is not None and bulk.handle is not None
    assert panels.bulk_action(panels.METER_LIST_BULK, "") is None
    assert panels.bulk_action(panels.METER_LIST_BULK, "delete_everything") is None


def test_meter_templates_name_no_collection_url():
    """Collection's links and forms on registry pages come from collection's panels."""
    for template in METERS_TEMPLATES.glob("*.html"):
        assert "collection:" not in template.read_text(), template.name


def test_meter_page_places_collections_panels(world):
    meter = world.grid_a.meters[0]
    html = client_for(world.operator_a).get(f"/meters/{meter.serial}/").content.decode()
    order = [html.index(f'id="{section}"') for section in
             ("register-history", "phasor-card", "events", "meter-runs", "read-now")]  # fmt: skip
    assert order == sorted(order)
    assert f"/meters/{meter.serial}/read/" in html


def test_registry_pages_without_panels(world, settings):
    settings.AMI_PANELS = {}
    ReadJob.objects.create(name="Nightly", organisation=world.org_a)
    client = client_for(world.operator_a)
    meter = world.grid_a.meters[0]
    page = client.get(f"/meters/{meter.serial}/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="events"' in html
    for section in ("phasor-card", "meter-runs", "read-now"):
        assert f'id="{section}"' not in html
    listing = client.get("/meters/").content.decode()
    assert 'id="bulk-actions"' not in listing and 'id="select-page"' not in listing
    refused = client.post(
        "/meters/", {"action": "add_to_job", "meter": [meter.pk], "filters": ""}, follow=True
    )
    assert "Choose an action." in refused.content.decode()


def test_bulk_panel_shows_only_with_jobs_the_user_may_change(world):
    client = client_for(world.operator_a)
    assert 'id="bulk-actions"' not in client.get("/meters/").content.decode()
    ReadJob.objects.create(name="Nightly", organisation=world.org_a)
    listing = client.get("/meters/").content.decode()
    assert 'id="bulk-actions"' in listing and 'id="select-page"' in listing
    assert 'id="bulk-actions"' not in client_for(world.readonly_a).get("/meters/").content.decode()
