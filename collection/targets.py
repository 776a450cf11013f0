"""From registry rows to protocol settings: what the reader needs, resolved before the loop.

A meter's endpoint row becomes a plain :class:`~collection.protocols.driver.Endpoint`; the
registry hands it to the driver of its protocol. Nothing here knows any protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from collection.protocols import registry
from collection.protocols.errors import NotSupported
from collection.protocols.registry import Endpoint
from meters.choices import ChannelKind, Security, Transport
from meters.models import (
    Channel,
    ConcentratorEndpoint,
    ConcentratorReadMode,
    DataConcentrator,
    Meter,
    MeterEndpoint,
    ReportedMeter,
)
from meters.store.days import local_zone

# The related rows build_target reads: select them with the meters.
TARGET_RELATED = ("meter_model", "endpoint", "concentrator", "concentrator__endpoint")


class NotReadable(Exception):
    """The registry lacks what a read needs (protocol not implemented, no address...)."""


@dataclass(frozen=True)
class MeterTarget:
    """One meter to read: its settings, the line it shares, and what its model defines."""

    meter_id: int
    serial: str
    settings: object  # the settings dataclass of the meter's protocol driver
    line: str | None  # a shared line (concentrator, serial bus) or None for its own
    registers: tuple[str, ...]
    profiles: tuple[str, ...]
    event_logs: tuple[str, ...]
    profile_since: dict[str, datetime] = field(default_factory=dict)
    line_limit: int = 1  # sessions the line takes at once (CommLine.max_sessions)


def comm_source(meter: Meter, endpoint: MeterEndpoint):
    """The endpoint whose line reaches this meter (its own or its concentrator's)."""
    if endpoint.transport == Transport.CONCENTRATOR:
        concentrator = meter.concentrator
        if concentrator is None:
            raise NotReadable(f"{meter.serial}: reads through a concentrator but has none")
        line = concentrator.stored_endpoint()
        if line is None:
            raise NotReadable(f"{meter.serial}: its concentrator has no endpoint")
        return line
    return endpoint


def _url_of(source, serial: str) -> str:
    if source.transport in (Transport.TCP, Transport.CONCENTRATOR) or isinstance(
        source, ConcentratorEndpoint
    ):
        if not source.host or not source.port:
            raise NotReadable(f"{serial}: no host and port to reach it")
        return f"tcp://{source.host}:{source.port}"
    if not source.serial_url:
        raise NotReadable(f"{serial}: no serial-line URL")
    return source.serial_url


def reads_own_data(meter: Meter, endpoint: MeterEndpoint) -> bool:
    """Is the meter read from its concentrator's own collected data (not through it)?"""
    return (
        endpoint.transport == Transport.CONCENTRATOR
        and meter.concentrator is not None
        and meter.concentrator.read_mode == ConcentratorReadMode.OWN_DATA
    )


def concentrator_endpoint(
    concentrator: DataConcentrator, *, exchange_log: bool = False, options: dict | None = None
) -> Endpoint:
    """The concentrator's own logical device as plain values (its address, security and
    keys): its probe, and its meters' data in the own-data read mode (`options` added)."""
    source = concentrator.stored_endpoint()
    name = f"concentrator {concentrator.serial}"
    if source is None:
        raise NotReadable(f"{name}: no endpoint (how to reach it) is registered")
    return _plain(
        source,
        name,
        url=_url_of(source, name),
        baud_rate=source.baud_rate,
        client_title=client_system_title(),
        options=ConcentratorEndpoint.options_for_driver(source.protocol, source.options)
        | (options or {}),
        # One invocation counter for every association with the concentrator.
        counter_scope=f"concentrator:{concentrator.pk}",
        exchange_log=exchange_log,
    )


def own_data_endpoint(meter: Meter, *, exchange_log: bool = False) -> Endpoint:
    """The meter's data at its concentrator: the concentrator's endpoint, the meter found
    there by serial (first on the channel the last probe saw it on)."""
    channel = (
        ReportedMeter.objects.filter(concentrator_id=meter.concentrator_id, serial=meter.serial)
        .values_list("channel", flat=True)
        .first()
    )
    return concentrator_endpoint(
        meter.concentrator,
        exchange_log=exchange_log,
        options={"dc_serial": meter.serial, "dc_channel": channel},
    )


def endpoint_of(meter: Meter, *, exchange_log: bool = False, reading: bool = False) -> Endpoint:
    """The meter's endpoint as plain values: the line from itself or its concentrator, the
    protocol's addressing and the security from the meter itself -- or, for a read
    (`reading`) of a meter whose concentrator is read for its own collected data, the
    concentrator's endpoint. Commands always go to the meter itself (through the gateway)."""
    endpoint = meter.stored_endpoint()
    if endpoint is None:
        raise NotReadable(f"{meter.serial}: no endpoint (how to reach it) is registered")
    if reading and reads_own_data(meter, endpoint):
        return own_data_endpoint(meter, exchange_log=exchange_log)
    source = comm_source(meter, endpoint)
    return _plain(
        endpoint,
        meter.serial,
        url=_url_of(source, meter.serial),
        baud_rate=source.baud_rate,
        client_title=client_system_title(meter),
        options=meter.protocol_options(),
        counter_scope=f"meter:{meter.pk}",
        get_with_list=meter.meter_model.get_with_list,
        exchange_log=exchange_log,
    )


def _plain(row, name: str, *, client_title: bytes, **values) -> Endpoint:
    """An endpoint row's protocol and security as plain values, with the rest given."""
    high = row.security == Security.HIGH
    try:
        return Endpoint(
            protocol=row.protocol,
            security=row.security,
            password=str(row.password) or None,
            auth_key=_hex(row.auth_key),
            block_key=_hex(row.block_key),
            system_title=_hex(row.system_title) if high else None,
            client_system_title=client_title if high else None,
            timeout_s=float(row.timeout_s),
            retries=row.retries,
            time_zone=local_zone().key,
            **values,
        )
    except ValueError as exc:  # a key or title that is not hex
        raise NotReadable(f"{name}: {exc}") from None


def _hex(value) -> bytes | None:
    return bytes.fromhex(str(value)) if value else None


def session_settings(meter: Meter, *, exchange_log: bool = False, reading: bool = False):
    """The settings of the meter's protocol driver, ready for a session (`reading`: a read,
    which its concentrator's own data may serve; else a command, for the meter itself)."""
    endpoint = endpoint_of(meter, exchange_log=exchange_log, reading=reading)
    try:
        return registry.settings_for(endpoint)
    except NotSupported:
        raise NotReadable(
            f"{meter.serial}: protocol {meter.get_protocol_display()} is not available yet"
        ) from None
    except ValueError as exc:  # incomplete security settings and the like
        raise NotReadable(f"{meter.serial}: {exc}") from None


def client_system_title(meter: Meter | None = None) -> bytes:
    """The head-end's own system title (8 bytes) towards `meter`: the meter's override, else
    the installation's `AMI_CLIENT_SYSTEM_TITLE` (default "AMI" + 0000000001)."""
    if meter is not None:
        return bytes.fromhex(meter.head_end_system_title)
    return bytes.fromhex(settings.AMI_CLIENT_SYSTEM_TITLE)


def line_for(
    *, protocol, transport, host, port, serial_url, options, concentrator_id
) -> str | None:
    """The shared line of a meter with these endpoint values, or None when it needs no turn:
    its concentrator (``concentrator:<id>``), else what its protocol's driver says of its URL
    (a serial port, a TCP-serial converter, a Modbus gateway: the URL; DLMS over TCP: none).
    Plain values, so a run can group thousands of meters by line from one query."""
    if transport == Transport.CONCENTRATOR:
        return f"concentrator:{concentrator_id}" if concentrator_id else None
    url = f"tcp://{host}:{port}" if transport == Transport.TCP else serial_url
    if not url or (transport == Transport.TCP and not (host and port)):
        return None
    try:
        return registry.line_of(protocol, url, MeterEndpoint.options_for_driver(protocol, options))
    except NotSupported:
        return None


# The values of a meter line_for needs, as Meter.objects.values_list(*LINE_VALUES).
LINE_VALUES = (
    "endpoint__protocol",
    "endpoint__transport",
    "endpoint__host",
    "endpoint__port",
    "endpoint__serial_url",
    "endpoint__options",
    "concentrator_id",
)


def line_of(meter: Meter) -> str | None:
    endpoint = meter.stored_endpoint()
    if endpoint is None:
        return None
    return line_for(
        protocol=endpoint.protocol,
        transport=endpoint.transport,
        host=endpoint.host,
        port=endpoint.port,
        serial_url=endpoint.serial_url,
        options=endpoint.options,
        concentrator_id=meter.concentrator_id,
    )


def lines_of(meter_ids) -> dict[int, str]:
    """The shared line of each of these meters that has one (one query)."""
    rows = Meter.objects.filter(pk__in=list(meter_ids)).values_list("pk", *LINE_VALUES)
    found = {}
    for pk, protocol, transport, host, port, serial_url, options, concentrator_id in rows:
        line = line_for(
            protocol=protocol,
            transport=transport,
            host=host,
            port=port,
            serial_url=serial_url,
            options=options,
            concentrator_id=concentrator_id,
        )
        if line is not None:
            found[pk] = line
    return found


def model_channels(model_ids) -> dict[int, list[Channel]]:
    """The channels of these meter models in one query, for `build_target(channels=...)`."""
    found: dict[int, list[Channel]] = {model_id: [] for model_id in model_ids}
    for channel in Channel.objects.filter(meter_model_id__in=found):  # default ordering
        found[channel.meter_model_id].append(channel)
    return found


def build_target(
    meter: Meter, *, exchange_log: bool = False, channels: list[Channel] | None = None
) -> MeterTarget:
    """Everything the async reader needs about one meter, read from the database up front.

    `channels`: its model's channels when the caller has them (`model_channels`: one query
    for a batch instead of one per meter); None: read here."""
    if channels is None:
        channels = list(meter.meter_model.channels.all())
    registers = tuple(c.obis for c in channels if c.kind == ChannelKind.REGISTER)
    profiles = tuple(
        sorted(
            {c.profile_obis for c in channels if c.kind == ChannelKind.PROFILE and c.profile_obis}
        )
    )
    logs = tuple(
        sorted({c.profile_obis or c.obis for c in channels if c.kind == ChannelKind.EVENT_LOG})
    )
    return MeterTarget(
        meter_id=meter.pk,
        serial=meter.serial,
        settings=session_settings(meter, exchange_log=exchange_log, reading=True),
        line=line_of(meter),
        registers=registers,
        profiles=profiles,
        event_logs=logs,
    )
