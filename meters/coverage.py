"""`MeterCoverage`: the abstract base of a row of an organisation (scoped by it) that covers
the organisation's meters, optionally only those below a grid node and of one meter model:
an alarm rule (`AlarmRule.grid_node`) and a report definition (`ReportDefinition.node`).
The node's field keeps each model's own name and help (`node_field` names it); `clean()`
refuses a node outside the organisation, `covers()` says whether a meter passes the filters.

Abstract (no table, no migration of its own): the fields are declared exactly as the models
had them, so moving them here changed no schema.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import Organisation
from accounts.scoping import ScopedQuerySet

NODE_OUTSIDE = "The grid node lies outside the organisation."


def node_outside(node, organisation) -> bool:
    """Whether a node filter would reach beyond the organisation (the forms' and API's check)."""
    return (
        node is not None
        and organisation is not None
        and not node.organisation.path.startswith(organisation.path)
    )


class MeterCoverage(models.Model):
    """An organisation's meters, narrowed to a grid subtree (`node_field`) and a model."""

    node_field = "grid_node"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    meter_model = models.ForeignKey(
        "meters.MeterModel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="only meters of this model (empty: every model)",
    )

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        abstract = True

    @property
    def covered_node(self):
        """The grid node the meters must lie below (None: the whole organisation)."""
        return getattr(self, self.node_field)

    def clean(self):
        super().clean()
        if getattr(self, f"{self.node_field}_id") and self.organisation_id:
            org = Organisation.objects.get(pk=self.organisation_id)
            if node_outside(self.covered_node, org):
                raise ValidationError({self.node_field: NODE_OUTSIDE})

    def covers(self, meter) -> bool:
        """Whether `meter` passes the node and model filters (not the organisation's)."""
        if getattr(self, f"{self.node_field}_id") is not None:
            point = meter.service_point
            if point is None or not point.path.startswith(self.covered_node.path):
                return False
        return self.meter_model_id is None or self.meter_model_id == meter.meter_model_id
