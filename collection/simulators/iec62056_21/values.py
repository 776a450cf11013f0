"""What a simulated IEC 62056-21 meter reads out: the shared value model as readout data sets.

Energies are written in kWh/kvarh with three decimals, so a correct reader gets the model's
integer Wh/varh back exactly; maximum demand in kW with three decimals (exact W) and its
capture time; instantaneous values with the model's own scaler (exact too).
:func:`expected` is what the head-end must store, in the contract's units.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from collection.protocols.iec62056_21 import clock, codec
from collection.protocols.iec62056_21 import profile as plugin

from .. import model

# short address -> (model OBIS, readout unit, decimals)
ENERGY = {
    "1.8.0": ("1.0.1.8.0.255", "kWh"),
    "2.8.0": ("1.0.2.8.0.255", "kWh"),
    "3.8.0": ("1.0.3.8.0.255", "kvarh"),
    "4.8.0": ("1.0.4.8.0.255", "kvarh"),
    "1.8.1": ("1.0.1.8.1.255", "kWh"),
    "1.8.2": ("1.0.1.8.2.255", "kWh"),
}
INSTANTANEOUS = ("32.7.0", "52.7.0", "72.7.0", "31.7.0", "51.7.0", "71.7.0", "14.7.0")
ANGLES = ("81.7.4", "81.7.15", "81.7.26")
ACTIVE_POWER = "1.7.0"
MAXIMUM_DEMAND = "1.6.0"
TIME, DATE, SERIAL, ERROR = "0.9.1", "0.9.2", "C.1.0", "F.F"
LOAD_PROFILE, EVENT_LOG = "P.01", "P.98"
# The load profile's columns: the model's four channels, in kWh / kvarh with three decimals.
PROFILE_CHANNELS = (("1.29.0", "kWh"), ("2.29.0", "kWh"), ("3.29.0", "kvarh"), ("4.29.0", "kvarh"))


def _fixed(value: Decimal, decimals: int, width: int = 0) -> str:
    return f"{value:0{width}.{decimals}f}" if width else f"{value:.{decimals}f}"


def _inst(serial: str, address: str, t: datetime) -> tuple[str, str]:
    code = f"1.0.{address}.255"
    scaler, unit = model.INSTANTANEOUS[code]
    value = Decimal(model.instantaneous(serial, code, t)).scaleb(scaler)
    return _fixed(value, -scaler), unit


def readout(
    serial: str, t: datetime, meter_time: datetime, zone: tzinfo | None = None
) -> list[tuple[str, tuple]]:
    """``(address, ((value, unit), ...))`` of the readout at true time `t`, with the meter's
    clock showing `meter_time` (its wall time in `zone` when given, else UTC)."""
    wall, _summer = clock.to_local(meter_time, zone)
    out: list[tuple[str, tuple]] = [
        (SERIAL, ((serial, None),)),
        (TIME, ((wall.strftime("%H:%M:%S"), None),)),
        (DATE, ((wall.strftime("%y-%m-%d"), None),)),
        (ERROR, (("00000000", None),)),
    ]
    for address, (code, unit) in ENERGY.items():
        wh = Decimal(model.register_value(serial, code, t))
        out.append((address, ((_fixed(wh.scaleb(-3), 3, 10), unit),)))
    watts, captured = model.max_demand(serial, t)
    out.append(
        (
            MAXIMUM_DEMAND,
            (
                (_fixed(Decimal(watts).scaleb(-3), 3, 7), "kW"),
                (clock.to_local(captured, zone)[0].strftime("%y%m%d%H%M"), None),
            ),
        )
    )
    power = Decimal(model.instantaneous(serial, "1.0.1.7.0.255", t))
    out.append((ACTIVE_POWER, ((_fixed(power.scaleb(-3), 3, 7), "kW"),)))
    for address in INSTANTANEOUS + ANGLES:
        value, unit = _inst(serial, address, t)
        out.append((address, ((value, unit),)))
    return out


def readout_body(serial: str, t: datetime, meter_time: datetime, zone=None) -> bytes:
    lines = []
    for address, values in readout(serial, t, meter_time, zone):
        line = address + "".join(f"({v}*{u})" if u else f"({v})" for v, u in values)
        lines.append(line.encode("ascii") + codec.CRLF)
    return b"".join(lines) + b"!" + codec.CRLF


def expected(serial: str, t: datetime) -> dict[str, Decimal]:
    """OBIS (stored form) -> what a correct reader stores at `t`, in the contract unit, from
    the model itself (not from the readout text)."""
    out = {
        f"1-0:{a}*255": Decimal(model.register_value(serial, code, t))
        for a, (code, _) in ENERGY.items()
    }
    out["1-0:1.6.0*255"] = Decimal(model.max_demand(serial, t)[0])
    out["1-0:1.7.0*255"] = Decimal(model.instantaneous(serial, "1.0.1.7.0.255", t))
    for address in INSTANTANEOUS + ANGLES:
        code = f"1.0.{address}.255"
        scaler, _unit = model.INSTANTANEOUS[code]
        out[f"1-0:{address}*255"] = Decimal(model.instantaneous(serial, code, t)).scaleb(scaler)
    return out


def profile_body(
    serial: str, start: datetime, end: datetime, status: dict | None = None, zone=None
) -> bytes:
    """The ``P.01`` answer for interval ends in [start, end] (the model's completed intervals)."""
    rows = [
        (
            at,
            (status or {}).get(at, 0),
            tuple(_fixed(Decimal(v).scaleb(-3), 3) for v in chans),
        )
        for at, *chans in model.profile_entries(serial, start, end)
    ]
    return plugin.format_profile(LOAD_PROFILE, model.INTERVAL_S, PROFILE_CHANNELS, rows, zone=zone)


def log_body(serial: str, start: datetime, end: datetime, zone=None) -> bytes:
    entries = [plugin.LogEntry(at, code) for at, code in model.events(serial, start, end)]
    return plugin.format_log(EVENT_LOG, entries, zone=zone)


def expected_profile(serial: str, start: datetime, end: datetime) -> dict:
    """{interval end: (+A Wh, -A Wh, +R varh, -R varh)} a correct reader stores."""
    return {at: tuple(chans) for at, *chans in model.profile_entries(serial, start, end)}
