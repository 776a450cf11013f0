"""The Modbus meter session: registers and instantaneous values through a register map.

Clock, profiles, events, relay and every command are not Modbus services of these meters:
they raise :class:`NotSupported` (the base class does). A head-end-side profile is the job's
business (energy registers polled into intervals), not the session's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from meters.obis import normalise

from .. import base
from ..errors import NotAssociated
from . import registermap as rm
from .line import Line, borrow, give_back
from .settings import ModbusSettings

PHASE_VOLTAGES = ("1-0:32.7.0*255", "1-0:52.7.0*255", "1-0:72.7.0*255")
PHASE_CURRENTS = ("1-0:31.7.0*255", "1-0:51.7.0*255", "1-0:71.7.0*255")
PHASE_ANGLES = ("1-0:81.7.4*255", "1-0:81.7.15*255", "1-0:81.7.26*255")
PHASE_PF = ("1-0:33.7.0*255", "1-0:53.7.0*255", "1-0:73.7.0*255")
FREQUENCY = "1-0:14.7.0*255"
ACTIVE_POWER = "1-0:1.7.0*255"


@lru_cache(maxsize=256)
def _cached_plan(registers: tuple[rm.Register, ...], max_registers: int, max_gap: int):
    """A map's reads are the same at every poll: plan them once."""
    return rm.plan(registers, max_registers, max_gap)


class ModbusSession(base.MeterSession):
    capabilities = frozenset({base.READ_REGISTERS, base.READ_INSTANTANEOUS})

    def __init__(self, settings: ModbusSettings, counters=None) -> None:
        self.settings = settings
        self.register_map = rm.load(settings.register_map)
        self.exchange_log = [] if settings.exchange_log else None
        self._line: Line | None = None

    async def open(self) -> None:
        self._line = await borrow(self.settings)

    async def close(self) -> None:
        line, self._line = self._line, None
        if line is not None:
            await give_back(line)

    def _plan(self, registers: tuple[rm.Register, ...]) -> list[rm.Request]:
        m = self.register_map
        return _cached_plan(registers, m.max_registers, m.max_gap)

    async def read_values(self, registers) -> dict[str, Decimal | None]:
        """OBIS -> value of `registers`, in the fewest requests the map allows."""
        if self._line is None:
            raise NotAssociated("session is not open")
        out: dict[str, Decimal | None] = {}
        for request in self._plan(tuple(registers)):
            words = await self._line.read(
                request.function,
                request.address,
                request.count,
                self.settings.unit_id,
                self.settings.timeout,
            )
            if self.exchange_log is not None:
                self.exchange_log.append(
                    base.Exchange(
                        "rx",
                        b"".join(w.to_bytes(2, "big") for w in words),
                        datetime.now(UTC),
                    )
                )
            for reg in request.registers:
                out[reg.obis] = rm.decode(reg, rm.slice_words(request, words, reg))
        return out

    async def read_registers(self, obis: list[str]) -> list[base.RegisterValue]:
        known = self.register_map.by_obis()
        wanted = [normalise(code) for code in obis]
        values = await self.read_values([known[c] for c in wanted if c in known])
        out = []
        for code in wanted:
            reg = known.get(code)
            if reg is None:
                out.append(
                    base.RegisterValue(
                        obis=code, value=None, unit=None, error="not in the register map"
                    )
                )
                continue
            out.append(base.RegisterValue(obis=code, value=values[code], unit=reg.unit or None))
        return out

    async def read_instantaneous(self) -> base.InstantaneousValues:
        registers = self.register_map.of_role("instantaneous", "pf")
        values = await self.read_values(registers)
        angles = tuple(values.get(a) for a in PHASE_ANGLES)
        if all(a is None for a in angles):  # no angle registers: from the power factors
            angles = tuple(rm.angle_from_pf(values.get(pf)) for pf in PHASE_PF)
        return base.InstantaneousValues(
            read_at=datetime.now(UTC),
            voltages=tuple(values.get(v) for v in PHASE_VOLTAGES),
            currents=tuple(values.get(c) for c in PHASE_CURRENTS),
            angles=angles,
            frequency=values.get(FREQUENCY),
            active_power=values.get(ACTIVE_POWER),
        )
