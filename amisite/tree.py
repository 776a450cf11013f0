"""Materialised-path trees (organisations, the grid): a subtree is one indexed prefix filter."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Concat, Substr


class TreeNode(models.Model):
    """Abstract base: `parent` plus `path` ("/1/4/9/"), kept true on every save, moves included."""

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=1000, editable=False, db_index=True, default="")

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        with transaction.atomic():
            old_path = self.path
            super().save(*args, **kwargs)
            parent_path = self.parent.path if self.parent_id else "/"
            if self.parent_id and self.path and parent_path.startswith(self.path):
                raise ValidationError({"parent": "A node cannot be moved below itself."})
            new_path = f"{parent_path}{self.pk}/"
            if new_path == old_path:
                return
            self.path = new_path
            model = type(self)
            model.objects.filter(pk=self.pk).update(path=new_path)
            if old_path:
                # Moving a node moves its subtree: one set-based update, not a walk.
                model.objects.filter(path__startswith=old_path).exclude(pk=self.pk).update(
                    path=Concat(Value(new_path), Substr("path", len(old_path) + 1))
                )
            self.after_move(old_path, new_path)

    @property
    def depth(self) -> int:
        return self.path.count("/") - 1

    def subtree(self):
        """This node and all below it."""
        return type(self).objects.filter(path__startswith=self.path)

    def ancestors(self):
        """The nodes above this one, root first."""
        ids = [int(part) for part in self.path.strip("/").split("/")[:-1] if part]
        return type(self).objects.filter(pk__in=ids).order_by("path")

    def is_within(self, other: TreeNode | None) -> bool:
        return other is not None and bool(other.path) and self.path.startswith(other.path)

    def clean(self):
        super().clean()
        if self.pk and self.parent_id:
            parent = (
                type(self).objects.filter(pk=self.parent_id).values_list("path", flat=True).first()
            )
            if parent and self.path and parent.startswith(self.path):
                raise ValidationError({"parent": "A node cannot be moved below itself."})

    def after_move(self, old_path: str, new_path: str) -> None:
        """Hook for subclasses that keep denormalised copies of the tree (inside the save)."""
