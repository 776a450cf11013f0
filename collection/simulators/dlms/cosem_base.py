"""The base of the simulated meter's COSEM objects: an object, the request context, errors.

Shared by ``objects.py`` (the meter's data, profiles, relay, calendar, push) and
``config_objects.py`` (clock settings, special days, limiter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from meters import obis as obis_codes

from ...protocols.dlms import axdr
from ...protocols.dlms.apdu import DAR_OBJECT_UNAVAILABLE, DAR_OTHER_REASON, DAR_READ_WRITE_DENIED
from ...protocols.dlms.axdr import Value

if TYPE_CHECKING:
    from .meter import MeterState, SimulatedMeter


class AccessError(Exception):
    """A data-access-result other than success."""

    def __init__(self, dar: int) -> None:
        super().__init__(dar)
        self.dar = dar


@dataclass
class Ctx:
    """What an object needs to answer one request."""

    meter: SimulatedMeter
    state: MeterState
    now: datetime  # true UTC time
    client: int = 16
    push: Callable[[], None] | None = None  # trigger the push setup (method 1)
    server_address: int = 1

    def meter_time(self) -> datetime:
        return self.now + timedelta(seconds=self.meter.total_drift_s + self.state.clock_offset_s)


UNIT = {"Wh": 30, "varh": 32, "W": 27, "var": 29, "V": 35, "A": 33, "Hz": 44, "deg": 8}


class CosemObject:
    class_id = 0
    version = 0
    attributes = 1
    methods = 0
    writable: tuple[int, ...] = ()

    def __init__(self, obis: str) -> None:
        self.obis = obis
        self.ln = obis_codes.to_bytes(obis)

    def get(self, ctx: Ctx, attr: int, selector: int | None, sel: Value | None) -> bytes:
        if selector is not None:
            raise AccessError(DAR_OTHER_REASON)
        if attr == 1:
            return axdr.enc_octets(self.ln)
        if not 1 <= attr <= self.attributes:
            raise AccessError(DAR_OBJECT_UNAVAILABLE)
        return self.value(ctx, attr)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        raise AccessError(DAR_OBJECT_UNAVAILABLE)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        raise AccessError(DAR_READ_WRITE_DENIED)

    def action(self, ctx: Ctx, method: int, param: Value | None) -> bytes | None:
        raise AccessError(DAR_OBJECT_UNAVAILABLE)


class Data(CosemObject):
    class_id = 1
    attributes = 2

    def __init__(self, obis: str, fn: Callable[[Ctx], bytes]) -> None:
        super().__init__(obis)
        self.fn = fn

    def value(self, ctx: Ctx, attr: int) -> bytes:
        return self.fn(ctx)
