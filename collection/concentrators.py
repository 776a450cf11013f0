"""Probing data concentrators: their own status and the meters they report.

A probe opens one session with the concentrator's own logical device (its endpoint, not a
meter's), reads its clock and the meters it reports (``READ_DEVICES``), and keeps:

* its status on its line (``meters.CommLine``: last contact, clock drift, when probed; a
  concentrator that does not answer is one fault and one "line down" alarm, as a read
  through it would be; ``lines.record_probe``);
* what it reports (``meters.ReportedMeter``: serial, channel, its own last contact with the
  meter), replaced by each probe that got the list. The concentrator's page reconciles them
  with the registry; the own-data read mode finds each meter's channel there first.

Run by the beat (``collection.probe_concentrators``, every 15 minutes) and by
``manage.py probe_concentrators [SERIAL ...]``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from meters.models import DataConcentrator, Meter, ReportedMeter

from .counters import DatabaseCounterStore
from .lines import record_probe
from .protocols import base, registry
from .protocols.errors import ConnectionFailed, MeterTimeout, NotSupported, ProtocolError
from .targets import NotReadable, concentrator_endpoint

log = logging.getLogger(__name__)


@dataclass
class ProbeResult:
    """What one probe found."""

    serial: str
    ok: bool = False
    error: str = ""
    clock_drift_s: float | None = None
    reported: list[base.ReportedDevice] | None = None  # None: no list (not read, or none kept)
    unknown: list[str] = field(default_factory=list)  # reported, not registered behind it
    missing: list[str] = field(default_factory=list)  # registered behind it, not reported

    def as_dict(self) -> dict:
        return {
            "concentrator": self.serial,
            "ok": self.ok,
            "error": self.error,
            "clock_drift_s": self.clock_drift_s,
            "reported": None if self.reported is None else len(self.reported),
            "unknown": self.unknown,
            "missing": self.missing,
        }


async def _talk(settings) -> tuple[base.ClockReading | None, list[base.ReportedDevice] | None]:
    session = registry.open_session(settings, DatabaseCounterStore())
    async with session:
        clock = await session.read_clock() if base.READ_CLOCK in session.capabilities else None
        try:
            devices = await session.read_devices()
        except NotSupported:
            devices = None  # it answers, but keeps no list of its meters
    return clock, devices


def probe(concentrator: DataConcentrator) -> ProbeResult:
    """Probe one concentrator now and keep what it said (see the module)."""
    result = ProbeResult(concentrator.serial)
    try:
        settings = registry.settings_for(concentrator_endpoint(concentrator))
    except (NotReadable, NotSupported, ValueError) as exc:
        result.error = f"cannot be probed: {exc}"
        return result  # nothing was tried: its status stays as it was
    try:
        clock, devices = asyncio.run(_talk(settings))
    except ProtocolError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, (ConnectionFailed, MeterTimeout)):
            record_probe(concentrator, down=result.error)
        else:  # it answered, wrongly: not down, but say so
            log.warning("concentrator %s probe failed: %s", concentrator.serial, result.error)
        return result
    result.ok = True
    result.clock_drift_s = clock.drift_seconds if clock is not None else None
    result.reported = devices
    with transaction.atomic():
        record_probe(concentrator, clock_drift_s=result.clock_drift_s)
        if devices is not None:
            _keep_reported(concentrator, devices)
            result.unknown, result.missing = reconcile(concentrator)
    return result


def _keep_reported(concentrator: DataConcentrator, devices: list[base.ReportedDevice]) -> None:
    now = timezone.now()
    by_serial = {d.serial: d for d in devices if d.serial and d.channel is not None}
    ReportedMeter.objects.filter(concentrator=concentrator).exclude(
        serial__in=list(by_serial)
    ).delete()
    ReportedMeter.objects.bulk_create(
        [
            ReportedMeter(
                concentrator=concentrator,
                serial=d.serial[:64],
                channel=d.channel,
                last_contact=d.last_contact,
                probed_at=now,
            )
            for d in by_serial.values()
        ],
        update_conflicts=True,
        unique_fields=["concentrator", "serial"],
        update_fields=["channel", "last_contact", "probed_at"],
        batch_size=1000,
    )


def reconcile(concentrator: DataConcentrator) -> tuple[list[str], list[str]]:
    """(reported but not registered behind it, registered behind it but not reported)."""
    reported = set(
        ReportedMeter.objects.filter(concentrator=concentrator).values_list("serial", flat=True)
    )
    ours = set(Meter.objects.filter(concentrator=concentrator).values_list("serial", flat=True))
    return sorted(reported - ours), sorted(ours - reported)


def probe_all(concentrators=None) -> list[ProbeResult]:
    """Probe every concentrator that has an endpoint (or those given), one after another."""
    if concentrators is None:
        concentrators = DataConcentrator.objects.filter(endpoint__isnull=False)
    return [probe(c) for c in concentrators.select_related("endpoint").order_by("pk")]
