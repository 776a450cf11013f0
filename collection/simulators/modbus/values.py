"""What a simulated Modbus meter holds: the DLMS simulator's value model, by OBIS code.

Every quantity is a pure function of ``(serial, OBIS, time)`` from :mod:`..model`, in the
contract's units (Wh, varh, W, V, A, Hz, degrees); :func:`words` encodes it as a register map
says, :func:`expected` is what a reader must decode from it (the value as the register type
can carry it: exact for integer Wh registers, float32-rounded for a kWh float).
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from collection.protocols.modbus import registermap as rm
from meters.obis import dotted

from .. import model

# Per-phase quantities the model does not name itself.
PHASE_POWER = {"1.0.21.7.0.255": 1, "1.0.41.7.0.255": 2, "1.0.61.7.0.255": 3}
PHASE_PF = {"1.0.33.7.0.255": 1, "1.0.53.7.0.255": 2, "1.0.73.7.0.255": 3}
TOTAL_PF = "1.0.13.7.0.255"
_VOLT = {1: "1.0.32.7.0.255", 2: "1.0.52.7.0.255", 3: "1.0.72.7.0.255"}
_CURR = {1: "1.0.31.7.0.255", 2: "1.0.51.7.0.255", 3: "1.0.71.7.0.255"}
_ANGLE = {1: "1.0.81.7.4.255", 2: "1.0.81.7.15.255", 3: "1.0.81.7.26.255"}


def _inst(serial: str, code: str, t: datetime) -> Decimal:
    scaler, _unit = model.INSTANTANEOUS[code]
    return Decimal(model.instantaneous(serial, code, t)).scaleb(scaler)


def quantity(serial: str, obis: str, t: datetime) -> Decimal:
    """The value of `obis` at `t` in the contract unit; KeyError for one the model lacks."""
    code = dotted(obis)
    if code in model.INSTANTANEOUS:
        return _inst(serial, code, t)
    if code in PHASE_POWER:
        return _inst(serial, "1.0.1.7.0.255", t) / 3
    if code in PHASE_PF:
        angle = _inst(serial, _ANGLE[PHASE_PF[code]], t)
        return Decimal(repr(math.cos(math.radians(float(angle)))))
    if code == TOTAL_PF:
        apparent = sum(_inst(serial, _VOLT[p], t) * _inst(serial, _CURR[p], t) for p in (1, 2, 3))
        power = _inst(serial, "1.0.1.7.0.255", t)
        return min(Decimal(1), power / apparent) if apparent else Decimal(1)
    return Decimal(model.register_value(serial, code, t))


def words(serial: str, reg: rm.Register, t: datetime) -> list[int]:
    """The registers of `reg` at `t`."""
    return rm.encode(reg, quantity(serial, reg.obis, t))


def expected(serial: str, reg: rm.Register, t: datetime) -> Decimal | None:
    """What a correct reader decodes from `reg` at `t`."""
    return rm.decode(reg, words(serial, reg, t))
