"""Publishing system status to the operators' websocket group, after commit."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .consumers import STATUS_GROUP


def publish_status(status: dict) -> None:
    """Push a status update to every connected operator once the current transaction commits."""

    def send():
        async_to_sync(get_channel_layer().group_send)(
            STATUS_GROUP, {"type": "status.update", "status": status}
        )

    transaction.on_commit(send)
