"""The grid tree: kinds in order, moves carry subtrees, organisations own subtrees, grants."""

import pytest
from django.core.exceptions import ValidationError
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts.actions import OutOfScope, grant_organisation
from meters import actions
from meters.choices import NodeKind
from meters.models import GridNode, Meter

pytestmark = pytest.mark.django_db


def test_kind_must_follow_the_grid_order(world):
    bad = GridNode(
        kind=NodeKind.FEEDER,
        code="X",
        name="x",
        parent=world.grid_a.region,
        organisation=world.org_a,
    )
    with pytest.raises(ValidationError, match="below a substation"):
        bad.full_clean()


def test_moving_a_feeder_moves_its_subtree(world):
    a = world.grid_a
    new_sub = GridNode.objects.create(
        kind=NodeKind.SUBSTATION, code="NA-S2", name="S2", parent=a.region, organisation=world.org_a
    )
    actions.move_grid_node(a.feeder, new_sub, acting_user=world.engineer_a)
    point = GridNode.objects.get(pk=a.service_points[0].pk)
    assert point.path.startswith(GridNode.objects.get(pk=new_sub.pk).path)
    assert GridNode.objects.get(pk=a.feeder.pk).parent_id == new_sub.pk


def test_a_node_cannot_move_below_itself(world):
    a = world.grid_a
    with pytest.raises(ValidationError):
        actions.move_grid_node(a.substation, a.transformer, acting_user=world.engineer_a)


def test_cannot_move_into_another_organisations_grid(world):
    with pytest.raises(OutOfScope):
        actions.move_grid_node(
            world.grid_a.feeder, world.grid_b.substation, acting_user=world.engineer_a
        )
    assert GridNode.objects.get(pk=world.grid_a.feeder.pk).parent_id == world.grid_a.substation.pk


def test_api_cannot_move_a_node_into_another_organisation(world):
    client = APIClient()
    client.force_authenticate(world.engineer_a)
    response = client.patch(
        f"/api/grid-nodes/{world.grid_a.feeder.pk}/",
        {"parent": world.grid_b.substation.pk},
        format="json",
    )
    assert response.status_code == 400
    assert GridNode.objects.get(pk=world.grid_a.feeder.pk).parent_id == world.grid_a.substation.pk


def test_assigning_a_subtree_moves_meters_into_the_new_organisation(world):
    from accounts.models import Organisation

    district = Organisation.objects.create(name="North district", code="nd", parent=world.org_a)
    moved = actions.assign_grid_subtree(
        world.grid_a.transformer, district, acting_user=world.admin_a
    )
    assert moved == 3  # the transformer and its two service points
    assert set(Meter.objects.filter(organisation=district)) == set(world.grid_a.meters)
    # The parent organisation still sees them (a subtree of its own).
    assert Meter.objects.restrict(world.operator_a).count() == 2


def test_cannot_assign_to_an_organisation_outside_scope(world):
    with pytest.raises(OutOfScope):
        actions.assign_grid_subtree(
            world.grid_a.transformer, world.org_b, acting_user=world.admin_a
        )


def test_guardian_grant_opens_another_organisation_read_only(world):
    assert Meter.objects.restrict(world.operator_b).count() == 2
    grant_organisation(world.operator_b, world.org_a, write=False, acting_user=world.superuser)
    from accounts.models import User

    operator_b = User.objects.get(pk=world.operator_b.pk)
    assert Meter.objects.restrict(operator_b).count() == 4
    assert Meter.objects.restrict(operator_b, "change").count() == 0  # role gives no change


def test_write_grant_needs_the_role_too(world):
    assign_perm("accounts.operate_organisation", world.engineer_b, world.org_a)
    assign_perm("accounts.access_organisation", world.engineer_b, world.org_a)
    from accounts.models import User

    engineer_b = User.objects.get(pk=world.engineer_b.pk)
    assert Meter.objects.restrict(engineer_b, "change").count() == 4
