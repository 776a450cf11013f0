"""Business operations on the grid and the registry: one verb each, atomic, audited."""

from __future__ import annotations

from django.db import transaction

from accounts import audit
from accounts.actions import OutOfScope, ensure_in_scope
from accounts.scoping import org_within_scope

from .models import Customer, DataConcentrator, GridNode, Meter


@transaction.atomic
def assign_grid_subtree(node: GridNode, organisation, *, acting_user) -> int:
    """Hand a grid subtree (and its meters, customers, concentrators) to another organisation.

    Both the subtree and the receiving organisation must lie within the user's scope.
    Returns the number of grid nodes moved.
    """
    node = GridNode.objects.select_for_update().get(pk=node.pk)
    ensure_in_scope(node, acting_user, "change")
    if not org_within_scope(acting_user, organisation, "change"):
        raise OutOfScope("the receiving organisation is outside your scope")
    old = node.organisation
    subtree = GridNode.objects.filter(path__startswith=node.path)
    node_ids = list(subtree.values_list("pk", flat=True))
    moved = subtree.update(organisation=organisation)
    Meter.objects.filter(service_point_id__in=node_ids).update(organisation=organisation)
    Customer.objects.filter(service_point_id__in=node_ids).update(organisation=organisation)
    DataConcentrator.objects.filter(grid_node_id__in=node_ids).update(organisation=organisation)
    audit.record(
        "assign_subtree",
        user=acting_user,
        obj=node,
        organisation=organisation,
        changes={"organisation": [old.code, organisation.code], "nodes": moved},
    )
    return moved


@transaction.atomic
def move_grid_node(node: GridNode, new_parent: GridNode | None, *, acting_user) -> GridNode:
    """Move a node (and its subtree) under another parent of the right kind, within scope."""
    node = GridNode.objects.select_for_update().get(pk=node.pk)
    ensure_in_scope(node, acting_user, "change")
    if new_parent is not None:
        ensure_in_scope(new_parent, acting_user, "change")
    before = audit.snapshot(node)
    node.parent = new_parent
    node.full_clean()
    node.save()
    audit.record(
        "move", user=acting_user, obj=node, changes=audit.diff(before, audit.snapshot(node))
    )
    return node
