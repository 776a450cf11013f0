"""The meters' event logs as an IEC 61968-9 EndDeviceEvents document (issue 16).

NA000001: the meter cover opened (code 44) and reverse energy (48) on 10 May 2026, and a
cover opening on 1 May (before the period 8-14 May); SB000001 (region B): a cover opening on
10 May, never in region A's document.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from defusedxml import ElementTree
from django.test import Client
from django.urls import reverse

from meters.store.writes import write_events
from reports.exporters import cim_events

pytestmark = pytest.mark.django_db

LOG = "0-0:99.98.0*255"
DAY10 = datetime(2026, 5, 10, 12, tzinfo=UTC)
NS = {"e": cim_events.NAMESPACE}
PERIOD = {"from": "2026-05-08", "to": "2026-05-14"}


@pytest.fixture
def events(world, settings):
    settings.TIME_ZONE = "UTC"
    m1 = world.grid_a.meters[0]
    write_events({
        (m1.pk, LOG, DAY10, 44): "[]",
        (m1.pk, LOG, DAY10 + timedelta(hours=1), 48): "[]",
        (m1.pk, LOG, datetime(2026, 5, 1, tzinfo=UTC), 44): "[]",
        (world.grid_b.meters[0].pk, LOG, DAY10, 44): "[]",
    })  # fmt: skip
    return world


def _get(user, **params):
    client = Client()
    client.force_login(user)
    return client.get(reverse("reports:events-cim"), params)


def _events(response):
    root = ElementTree.fromstring(b"".join(response.streaming_content))
    assert root.tag == f"{{{cim_events.NAMESPACE}}}EndDeviceEvents"
    return [
        {
            "at": e.findtext("e:createdDateTime", namespaces=NS),
            "type": e.find("e:EndDeviceEventType", NS).get("ref"),
            "meter": e.findtext("e:Assets/e:mRID", namespaces=NS),
            "point": e.findtext("e:UsagePoint/e:mRID", namespaces=NS),
            "details": {
                d.findtext("e:name", namespaces=NS): d.findtext("e:value", namespaces=NS)
                for d in e.findall("e:EndDeviceEventDetails", NS)
            },
        }
        for e in root.findall("e:EndDeviceEvent", NS)
    ]


def test_document_scoped_and_exact(events):
    response = _get(events.operator_a, **PERIOD)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('2026-05-08_2026-05-14.xml"')
    got = _events(response)
    assert [(e["at"], e["type"], e["meter"]) for e in got] == [
        ("2026-05-10T12:00:00+00:00", "3.12.141.212", "NA000001"),  # cover removed
        ("2026-05-10T13:00:00+00:00", "3.12.6.219", "NA000001"),  # current reversed
    ]
    assert got[0]["point"] == events.grid_a.meters[0].service_point.code
    assert got[0]["details"] == {"log": LOG, "code": "44"}
    got = _events(_get(events.operator_b, **PERIOD))
    assert [e["meter"] for e in got] == ["SB000001"]


def test_subtree_and_bad_input(events):
    got = _events(_get(events.operator_a, **PERIOD, node=events.grid_a.transformer.pk))
    assert len(got) == 2
    response = _get(events.operator_a, **PERIOD, node=events.grid_b.transformer.pk)
    assert response.status_code == 400 and b"No such grid node" in response.content
    response = _get(events.operator_a, **{"from": "2026-13-01"})
    assert response.status_code == 400 and b"Bad period" in response.content
    assert _events(_get(events.operator_a, **{"from": "2026-05-20", "to": "2026-05-21"})) == []


def test_event_type_codes_are_four_part_or_ami():
    """A mapped kind is a dotted 4-part EndDeviceEventType of an electric meter (type 3);
    a kind with no verified code keeps ami:<kind>; the table in docs/api.md lists them all."""
    from pathlib import Path

    from meters.alarms.events import EventKind

    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    for kind in EventKind.values:
        code = cim_events.event_type(kind)
        if kind in cim_events.EVENT_TYPES:
            parts = code.split(".")
            assert len(parts) == 4 and parts[0] == "3" and all(p.isdigit() for p in parts)
            assert f"`{code}`" in docs and f"`{kind}`" in docs
        else:
            assert code == f"ami:{kind}"
    assert cim_events.event_type("relay_state_change") == "ami:relay_state_change"
