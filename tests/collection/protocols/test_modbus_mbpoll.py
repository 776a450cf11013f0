"""An independent peer on the wire: ``mbpoll`` (Debian package mbpoll, libmodbus) reads our
Modbus simulator, over Modbus TCP and in RTU framing on a serial line (a pty), word for word
what the value model says, and float32 registers as the map decodes them. Skipped where the
mbpoll binary is missing, except in CI, which installs it (.ci/run)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from collection.protocols.modbus import registermap as rm
from collection.simulators.modbus import values
from collection.simulators.modbus.server import ModbusFleet, make_meters
from tests.collection.fleet import fleet_thread
from tests.services import IN_CI

MBPOLL = shutil.which("mbpoll")
# In CI (CI=true) a missing mbpoll is a failure, as a missing browser is; elsewhere a skip.
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        MBPOLL is None and not IN_CI, reason="mbpoll is not installed (apt-get install mbpoll)"
    ),
]

NOW = datetime(2025, 6, 15, 12, 7, 30, tzinfo=UTC)
_LINE = re.compile(r"^\[(\d+)\]:\s+(\S+)\s*$", re.M)


def mbpoll(target: list[str], unit: int, reg, kind: str = "hex") -> dict[int, str]:
    """{reference: printed value} of one mbpoll read of `reg` (PDU addressing: ``-0``)."""
    table = "3" if reg.function == 4 else "4"  # mbpoll: 3 input registers, 4 holding
    count = reg.count if kind == "hex" else 1
    assert MBPOLL, "mbpoll is not installed (apt-get install mbpoll)"
    argv = [MBPOLL, *target, "-a", str(unit), "-0", "-r", str(reg.address), "-c", str(count)]
    argv += ["-t", f"{table}:{kind}", "-1", "-o", "2"]
    if reg.word_order == "big":
        argv.append("-B")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]
    return {int(ref): value for ref, value in _LINE.findall(done.stdout)}


def check_words(target: list[str], meter, the_map) -> int:
    checked = 0
    for reg in the_map.registers:
        got = mbpoll(target, meter.unit_id, reg)
        words = values.words(meter.serial, reg, NOW)
        assert got == {reg.address + i: f"0x{w:04X}" for i, w in enumerate(words)}, reg.obis
        checked += 1
    return checked


@pytest.mark.parametrize("name", ["sdm630", "pm5500", "em340"])
def test_mbpoll_reads_every_register_of_our_simulator_over_tcp(name):
    meters = make_meters(3, name)
    the_map = rm.load(name)
    with fleet_thread(meters, fleet_class=ModbusFleet, clock=lambda: NOW) as fleet:
        target = ["-m", "tcp", "-p", str(fleet.port), fleet.host]
        assert check_words(target, meters[1], the_map) == len(the_map.registers)
        floats = [r for r in the_map.registers if r.type == "float32"]
        for reg in floats:
            [printed] = mbpoll(target, meters[2].unit_id, reg, "float").values()
            hi, lo = values.words(meters[2].serial, reg, NOW)
            served = struct.unpack(">f", struct.pack(">HH", hi, lo))[0]
            # mbpoll prints a float with %g (6 significant digits); the map rounds it to the
            # register's resolution.
            assert Decimal(printed) == Decimal(f"{served:g}"), reg.obis
            expected = values.expected(meters[2].serial, reg, NOW)
            margin = max(reg.resolution, abs(expected) * Decimal("1e-5"))  # 6 digits printed
            assert abs(Decimal(printed) * reg.scale - expected) <= margin, reg.obis
        assert floats or name != "sdm630"


def test_mbpoll_reads_several_units_on_an_rtu_serial_line():
    meters = make_meters(2, "em340")
    the_map = rm.load("em340")
    with fleet_thread(meters, ModbusFleet, pty=True, framing="rtu", clock=lambda: NOW) as fleet:
        target = ["-m", "rtu", "-b", "9600", "-P", "none", fleet.pty_path]
        for meter in meters:
            assert check_words(target, meter, the_map) == len(the_map.registers)
