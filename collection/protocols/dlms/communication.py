"""The communication side of a DLMS meter's configuration: its modem's APN (GPRS modem setup,
class 45), the TCP port it listens on and its inactivity time-out (TCP-UDP setup, class 41),
its IPv4 setup (class 42) and how it connects (auto connect, class 29); and its alarm filters
(data objects 0-0:97.98.10/11.255: a mask per alarm register 0-0:97.98.0/1.255).

Every write reads back what the meter now holds; a command is confirmed by that answer. The
GPRS modem's PIN code (class 45, attribute 3) is a secret and is neither read nor written.
"""

from __future__ import annotations

import ipaddress

from .. import base
from ..errors import MalformedResponse, ProtocolError
from . import axdr
from .cosem import ATTR_VALUE
from .gurux_compat import CLASS_DATA

CLASS_AUTO_CONNECT, CLASS_TCP_UDP_SETUP, CLASS_IPV4_SETUP, CLASS_GPRS_SETUP = 29, 41, 42, 45
AUTO_CONNECT = "0.0.2.1.0.255"
TCP_UDP_SETUP = "0.0.25.0.0.255"
IPV4_SETUP = "0.0.25.1.0.255"
GPRS_SETUP = "0.0.25.4.0.255"
AUTO_CONNECT_MODE = 2
TCP_PORT, TCP_INACTIVITY = 2, 6
IP_ADDRESS, IP_SUBNET_MASK, IP_GATEWAY, IP_USE_DHCP = 3, 6, 7, 8
GPRS_APN = 2
ALARM_REGISTER_1, ALARM_REGISTER_2 = "0.0.97.98.0.255", "0.0.97.98.1.255"
ALARM_FILTER_1, ALARM_FILTER_2 = "0.0.97.98.10.255", "0.0.97.98.11.255"


def _ip(value: str | None) -> bytes:
    return axdr.enc_uint32(int(ipaddress.IPv4Address(value or "0.0.0.0")))


def _dotted(raw: object) -> str | None:
    if not isinstance(raw, int) or not 0 <= raw <= 0xFFFFFFFF:
        raise MalformedResponse("IPv4 setup: an address is not a double-long-unsigned")
    return str(ipaddress.IPv4Address(raw)) if raw else None


def _values(raw: list) -> list:
    for item in raw:
        if isinstance(item, ProtocolError):
            raise item
    return [axdr.decode_all(r) for r in raw]


class DlmsCommunication:
    """Mixin of the DLMS session (needs the association's GET/SET and `_call`)."""

    async def read_communication(self) -> base.CommunicationSettings:
        return await self._call(self._read_communication)

    async def write_communication(
        self, settings: base.CommunicationSettings
    ) -> base.CommunicationSettings:
        return await self._call(self._write_communication, settings)

    async def _read_communication(self) -> base.CommunicationSettings:
        apn, mode, port, idle, address, mask, gateway, dhcp = _values(
            await self.get_many(
                [
                    (CLASS_GPRS_SETUP, GPRS_SETUP, GPRS_APN),
                    (CLASS_AUTO_CONNECT, AUTO_CONNECT, AUTO_CONNECT_MODE),
                    (CLASS_TCP_UDP_SETUP, TCP_UDP_SETUP, TCP_PORT),
                    (CLASS_TCP_UDP_SETUP, TCP_UDP_SETUP, TCP_INACTIVITY),
                    (CLASS_IPV4_SETUP, IPV4_SETUP, IP_ADDRESS),
                    (CLASS_IPV4_SETUP, IPV4_SETUP, IP_SUBNET_MASK),
                    (CLASS_IPV4_SETUP, IPV4_SETUP, IP_GATEWAY),
                    (CLASS_IPV4_SETUP, IPV4_SETUP, IP_USE_DHCP),
                ]
            )
        )
        if not isinstance(apn, bytes) or not all(isinstance(n, int) for n in (mode, port, idle)):
            raise MalformedResponse("communication: unexpected APN, mode, port or time-out")
        try:
            apn_text = apn.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedResponse("communication: the APN is not ASCII") from None
        return base.CommunicationSettings(
            apn=apn_text,
            connection_mode=mode,
            listen_port=port,
            inactivity_timeout_s=idle,
            use_dhcp=bool(dhcp),
            ip_address=_dotted(address),
            subnet_mask=_dotted(mask),
            gateway=_dotted(gateway),
        )

    async def _write_communication(
        self, s: base.CommunicationSettings
    ) -> base.CommunicationSettings:
        put = self.set_value
        await put(CLASS_GPRS_SETUP, GPRS_SETUP, GPRS_APN, axdr.enc_octets(s.apn.encode("ascii")))
        await put(CLASS_TCP_UDP_SETUP, TCP_UDP_SETUP, TCP_PORT, axdr.enc_uint16(s.listen_port))
        idle = axdr.enc_uint16(s.inactivity_timeout_s)
        await put(CLASS_TCP_UDP_SETUP, TCP_UDP_SETUP, TCP_INACTIVITY, idle)
        if not s.use_dhcp:  # the fixed address first, then DHCP off
            await put(CLASS_IPV4_SETUP, IPV4_SETUP, IP_ADDRESS, _ip(s.ip_address))
            await put(CLASS_IPV4_SETUP, IPV4_SETUP, IP_SUBNET_MASK, _ip(s.subnet_mask))
            await put(CLASS_IPV4_SETUP, IPV4_SETUP, IP_GATEWAY, _ip(s.gateway))
        await put(CLASS_IPV4_SETUP, IPV4_SETUP, IP_USE_DHCP, axdr.enc_boolean(s.use_dhcp))
        # How it connects goes last: the rest is in place when it takes effect.
        mode = axdr.enc_enum(s.connection_mode)
        await put(CLASS_AUTO_CONNECT, AUTO_CONNECT, AUTO_CONNECT_MODE, mode)
        return await self._read_communication()

    async def read_alarm_filters(self) -> base.AlarmFilters:
        return await self._call(self._read_alarm_filters)

    async def write_alarm_filters(self, filters: base.AlarmFilters) -> base.AlarmFilters:
        return await self._call(self._write_alarm_filters, filters)

    async def _read_alarm_filters(self) -> base.AlarmFilters:
        names = (ALARM_FILTER_1, ALARM_FILTER_2, ALARM_REGISTER_1, ALARM_REGISTER_2)
        raw = await self.get_many([(CLASS_DATA, ln, ATTR_VALUE) for ln in names])
        filter_1, filter_2 = _values(raw[:2])
        if not isinstance(filter_1, int) or not isinstance(filter_2, int):
            raise MalformedResponse("alarm filters: a filter is not a whole number")
        # A meter without the second alarm register answers for it with an error: unknown.
        registers = [None if isinstance(r, ProtocolError) else axdr.decode_all(r) for r in raw[2:]]
        return base.AlarmFilters(
            filter_1=filter_1,
            filter_2=filter_2,
            register_1=registers[0] if isinstance(registers[0], int) else None,
            register_2=registers[1] if isinstance(registers[1], int) else None,
        )

    async def _write_alarm_filters(self, f: base.AlarmFilters) -> base.AlarmFilters:
        for ln, mask in ((ALARM_FILTER_1, f.filter_1), (ALARM_FILTER_2, f.filter_2)):
            await self.set_value(CLASS_DATA, ln, ATTR_VALUE, axdr.enc_uint32(mask))
        return await self._read_alarm_filters()
