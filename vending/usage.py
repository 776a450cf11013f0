"""Credit use from AMI readings, shown next to the vending history.

The measurement store does not exist yet, so there is nothing honest to show: the function
returns None and the page says "no AMI readings yet". When the store lands, this returns
the kWh the meter registered between `since` and `until`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

NO_READINGS_MESSAGE = "No AMI readings yet: credit use appears here once meter readings are stored."


def energy_used(meter, since: datetime, until: datetime) -> Decimal | None:
    """kWh imported by `meter` in [since, until), or None while no readings are stored."""
    return None
