"""The Modbus meter session: registers and instantaneous values through a register map, and
the head-end profile of a meter without memory.

Clock, events, relay and every command are not Modbus services of these meters: they raise
:class:`NotSupported` (the base class does). These meters keep no load profile either: the
head-end makes one. Each poll of the job (``read_load_profile``) reads the map's energy
registers once and gives them as one capture of a cumulative profile at the interval boundary
nearest the poll (never after the asked range's end): exact when the poll is within
``profile_tolerance_s`` of it, else the row's status says "clock adjusted" (the store's
CLOCK_SUSPECT: the value is of another instant than its time stamp). Boundaries between the
range's start and that capture that no poll reached are rows without values (the store's
MISSING); the store derives interval energy from consecutive captures. Every value keeps its
full quality byte: that the series is head-end derived is said by the model's channels
(``Channel.head_end_derived``), not by a quality bit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from meters.obis import normalise

from .. import base
from ..errors import NotAssociated, NotSupported
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


# The status byte of a capture taken too far from its boundary (IEC 62056 profile status
# "clock adjusted": the store's CLOCK_SUSPECT).
STATUS_OFF_BOUNDARY = 0x20
HEAD_END_PROFILE = "1-0:99.1.0*255"  # what the job asks for; any profile code gets the same


def _now() -> datetime:
    return datetime.now(UTC)


def boundary(at: datetime, period_s: int, end: datetime | None = None) -> datetime:
    """The interval boundary (UTC, aligned to midnight) nearest `at`, never after `end`."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (at - midnight).total_seconds()
    nearest = midnight + timedelta(seconds=round(offset / period_s) * period_s)
    step = timedelta(seconds=period_s)
    while end is not None and nearest > end:
        nearest -= step
    return nearest


class ModbusSession(base.MeterSession):
    capabilities = frozenset({base.READ_REGISTERS, base.READ_INSTANTANEOUS, base.READ_LOAD_PROFILE})

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

    async def read_load_profile(
        self, profile: str, start: datetime, end: datetime
    ) -> base.ProfileBlock:
        """One head-end capture of the energy registers (see the module docstring)."""
        start, end = base.ensure_utc(start), base.ensure_utc(end)
        energy = self.register_map.of_role("energy")
        if not energy:
            raise NotSupported(f"register map {self.register_map.name} has no energy register")
        values = await self.read_values(energy)
        polled = _now()
        period = self.settings.profile_period_s
        at = boundary(polled, period, end)
        channels = tuple(base.Channel(r.obis, r.unit or None) for r in energy)
        rows: list[base.ProfileRow] = []
        if at >= start:
            step = timedelta(seconds=period)
            missed = at - step
            empty = (None,) * len(energy)
            while missed > start and len(rows) < self.settings.profile_backfill:
                rows.append(base.ProfileRow(missed, empty))
                missed -= step
            rows.reverse()
            late = abs((polled - at).total_seconds()) > self.settings.profile_tolerance_s
            row_values = tuple(values[r.obis] for r in energy)
            rows.append(base.ProfileRow(at, row_values, STATUS_OFF_BOUNDARY if late else None))
        return base.ProfileBlock(profile, channels, tuple(rows), period)
