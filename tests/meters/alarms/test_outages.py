"""Outage grouping: meters off per transformer and feeder, of how many, since when."""

from datetime import timedelta

import pytest

from meters.alarms.engine import evaluate_events, meters_off, outage_summary
from meters.choices import NodeKind
from meters.models import GridNode, Meter
from tests.meters.alarms.helpers import POWER_DOWN, POWER_UP, T0, events, make_rule

pytestmark = pytest.mark.django_db


def _transformer(world, code, n):
    grid = world.grid_a
    tx = GridNode.objects.create(
        kind=NodeKind.TRANSFORMER,
        code=code,
        name=code,
        parent=grid.feeder,
        organisation=world.org_a,
    )
    meters = []
    for i in range(n):
        sp = GridNode.objects.create(
            kind=NodeKind.SERVICE_POINT,
            code=f"{code}-SP{i}",
            name=f"SP{i}",
            parent=tx,
            organisation=world.org_a,
        )
        meters.append(
            Meter.objects.create(
                serial=f"{code}-{i:03d}",
                meter_model=world.meter_model,
                service_point=sp,
                organisation=world.org_a,
            )
        )
    return tx, meters


def test_outage_counts_per_transformer_and_feeder(world):
    make_rule(world.utility)
    t114, meters = _transformer(world, "T-114", 40)
    evs = []
    for i, meter in enumerate(meters[:37]):
        evs += events(meter, POWER_DOWN, start=T0 + timedelta(seconds=i))
    # Two came back; one other transformer's meter failed; organisation B has an outage too.
    for meter in meters[:2]:
        evs += events(meter, POWER_UP, start=T0 + timedelta(minutes=10))
    evs += events(world.grid_a.meters[0], POWER_DOWN, start=T0 + timedelta(minutes=3))
    evs += events(world.grid_b.meters[0], POWER_DOWN)
    evaluate_events(evs)

    summary = outage_summary(world.operator_a)
    assert summary["meters_off"] == 36
    by_code = {n["code"]: n for n in summary["transformers"]}
    assert set(by_code) == {"T-114", world.grid_a.transformer.code}
    assert (by_code["T-114"]["off"], by_code["T-114"]["total"]) == (35, 40)
    assert by_code["T-114"]["since"] == T0 + timedelta(seconds=2)  # the first still off
    assert (by_code["NA-T1"]["off"], by_code["NA-T1"]["total"]) == (1, 2)
    (feeder,) = summary["feeders"]
    assert (feeder["code"], feeder["off"], feeder["total"]) == ("NA-F1", 36, 42)
    assert summary["transformers"][0]["code"] == "T-114"  # worst first

    # Organisation B sees only its own outage; the utility's superuser sees both.
    other = outage_summary(world.operator_b)
    assert other["meters_off"] == 1 and other["transformers"][0]["code"] == "SB-T1"
    assert outage_summary(world.superuser)["meters_off"] == 37
    # The home's figure alone (no counts below each node), scoped alike.
    assert [meters_off(u) for u in (world.operator_a, world.operator_b, world.superuser)] == [
        36,
        1,
        37,
    ]


def test_the_alarm_list_shows_the_largest_outages_and_links_to_the_rest(world):
    """A storm's hundreds of transformers do not all go on the alarm list (they were most of
    its cost): the 20 with the most meters off, then "N more", linked to the outage page,
    which lists every one."""
    from django.test import Client

    from meters.alarms.views import OUTAGE_PANEL_ROWS

    make_rule(world.utility)
    evs = []
    for i in range(OUTAGE_PANEL_ROWS + 2):
        _, meters = _transformer(world, f"T-{i:02d}", 2 if i == OUTAGE_PANEL_ROWS + 1 else 1)
        for meter in meters:
            evs += events(meter, POWER_DOWN)
    evaluate_events(evs)
    client = Client()
    client.force_login(world.operator_a)
    html = client.get("/alarms/").content.decode()
    start = html.index('id="outage-table"')
    table = html[start : html.index("</table>", start)]
    assert table.count("<td>Transformer</td>") == OUTAGE_PANEL_ROWS
    assert "T-21 T-21</td><td>2 of 2" in table  # the most meters off first, the last created
    assert "T-19 T-19" not in table and "T-20 T-20" not in table  # past the 20
    assert '<a href="/alarms/outages/">2 more transformers with meters off</a>' in table
    assert table.count("<td>Feeder</td>") == 1 and "more feeder" not in table
    assert f'data-rows="{OUTAGE_PANEL_ROWS}" data-all="/alarms/outages/"' in html
    full = client.get("/alarms/outages/").content.decode()
    assert full.count("<td>Transformer</td>") == OUTAGE_PANEL_ROWS + 2
    assert "more transformer" not in full and "data-rows" not in full
